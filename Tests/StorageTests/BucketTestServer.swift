import Foundation
import NIOCore
import S3
import Storage
import TestSupport
import Testing

/// One SeaweedFS server and one bucket for every bucket suite (nested in ``BucketSuites``), started before the
/// first test and stopped after the last. Each test works under a prefix of its own (``BucketTestStore``): SeaweedFS
/// gives each bucket volumes of its own, and a bucket per test would soon use up a small server's.
struct BucketTestServer: SuiteTrait, TestScoping {
    /// The bucket every test shares.
    static let bucket = "pullback-storage-tests"
    @TaskLocal static var server: ObjectStoreServer?

    var isRecursive: Bool { false }

    func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        try await Fixture.run { fixture in
            let server = try await ObjectStoreServer.start(fixture)
            try await onThread {
                let client = try S3Client(try BucketTestStore.configuration(of: server))
                defer { client.shutdown() }
                try client.createBucket(Self.bucket)
            }
            try await Self.$server.withValue(server) { try await function() }
        }
    }
}

extension Trait where Self == BucketTestServer {
    /// The SeaweedFS server and bucket of the bucket suites.
    static var bucketServer: Self { BucketTestServer() }
}

/// The bucket store's suites, which share one server.
@Suite(.bucketServer) struct BucketSuites {}

/// A client of the suite's server, a prefix of the test's own in the shared bucket (`top`), and a ``BucketStore``
/// under `top/repo`.
struct BucketTestStore: Sendable {
    let client: S3Client
    let bucket: String
    let top: String
    let store: BucketStore

    /// Runs `body` on a thread of its own (every store call blocks) with a new prefix, and shuts the client down.
    static func with(_ body: @escaping @Sendable (BucketTestStore) throws -> Void) async throws {
        let server = try #require(BucketTestServer.server, "the suite is not nested in BucketSuites")
        try await onThread {
            let client = try S3Client(try configuration(of: server))
            defer { client.shutdown() }
            let top = "t" + UUID().uuidString.lowercased().prefix(13)
            let store = try BucketStore(client: client, bucket: BucketTestServer.bucket, prefix: top + "/repo")
            try body(BucketTestStore(client: client, bucket: BucketTestServer.bucket, top: top, store: store))
        }
    }

    /// The client configuration for `server`.
    static func configuration(of server: ObjectStoreServer) throws -> S3Configuration {
        var configuration = try S3Configuration.fromEnvironment(
            server.environment.merging(["HOME": "/nonexistent"]) { $1 }, allowHTTP: false)
        configuration.requestTimeout = .seconds(30)
        return configuration
    }

    /// The bucket's key of `name` under the test's prefix.
    func name(_ name: String) -> String { top + "/" + name }

    /// Every key under the test's prefix, without it.
    func allKeys() throws -> [String] {
        var keys: [String] = []
        var token: String?
        repeat {
            let page = try client.listObjects(
                bucket: bucket, prefix: top + "/", delimiter: nil, continuationToken: token)
            keys += page.objects.map { String($0.key.dropFirst(top.count + 1)) }
            token = page.nextContinuationToken
        } while token != nil
        return keys.sorted()
    }

    /// The keys (without the test's prefix) of the multipart uploads started under it and neither completed nor
    /// aborted.
    func openUploads() throws -> [String] {
        try client.listMultipartUploads(bucket: bucket, prefix: top + "/").map {
            String($0.key.dropFirst(top.count + 1))
        }
    }

    /// Stores `body` as `name` (under the test's prefix) behind the store's back.
    func plant(_ name: String, _ body: ByteBuffer = ByteBuffer()) throws {
        _ = try client.putObject(bucket: bucket, key: self.name(name), body: body)
    }
}

/// Runs `body` on a thread of its own, never on the cooperative pool, and returns once it has ended.
func onThread(_ body: @escaping @Sendable () throws -> Void) async throws {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

func key(_ text: String) throws -> ObjectKey { try ObjectKey(text) }
