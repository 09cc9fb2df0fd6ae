import Foundation
import S3

/// A SeaweedFS server (``ObjectStoreServer``), a client of it and a bucket that client made: where a test of a
/// bucket store or of the `pullback` executable against a bucket starts. The client is the test's own way into the
/// bucket, to read, plant and list objects behind the store's back; ``close()`` shuts it down.
package struct ServerBucket: Sendable {
    /// The server the bucket is in.
    package let server: ObjectStoreServer
    /// The client that made the bucket.
    package let client: S3Client
    /// The bucket's name.
    package let name: String

    /// Starts a server in `fixture` (HTTPS with `tls`) and makes the bucket `name` in it (a fresh `pullback-…` name
    /// when nil) through a client configured as ``configuration(of:_:)`` says.
    package static func start(
        _ fixture: Fixture, named name: String? = nil, tls: ObjectStoreServer.TLS? = nil,
        _ adjust: (inout S3Configuration) -> Void = { _ in }
    ) async throws -> ServerBucket {
        let server = try await ObjectStoreServer.start(fixture, tls: tls)
        let client = try S3Client(try configuration(of: server, adjust))
        let name = name ?? "pullback-" + UUID().uuidString.lowercased().prefix(12)
        do {
            try await onThread { try client.createBucket(name) }
        } catch {
            _ = try? await onThread { client.shutdown() }
            throw error
        }
        return ServerBucket(server: server, client: client, name: name)
    }

    /// A client configuration with `server`'s keys, endpoint and region, changed by `adjust`. `HOME` points nowhere,
    /// so that no profile file of the user running the tests is read.
    package static func configuration(
        of server: ObjectStoreServer, _ adjust: (inout S3Configuration) -> Void = { _ in }
    ) throws -> S3Configuration {
        var configuration = try S3Configuration.fromEnvironment(
            server.environment.merging(["HOME": "/nonexistent"]) { $1 }, allowHTTP: false)
        adjust(&configuration)
        return configuration
    }

    /// Shuts the client down, on a thread of its own: it waits for its event loop to end.
    package func close() async {
        _ = try? await onThread { client.shutdown() }
    }
}

/// Runs `body` on a thread of its own, never on Swift's cooperative pool (S3 client calls block until their
/// request ends), and returns what it returns once it has ended.
package func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}
