import Foundation
import NIOCore
import S3
import TestSupport
import Testing

/// A bucket of a fresh SeaweedFS server, and the client a test looks into it with: pullback runs against it with the
/// server's keys and endpoint in its environment (`env`), the test reads, writes and lists objects directly.
typealias TestBucket = ServerBucket

extension TestBucket {
    /// A new server and bucket in `fx`; the test's client tries a failed request 8 times.
    static func make(_ fx: Fixture) async throws -> TestBucket {
        try await start(fx) { $0.retries = 8 }
    }

    /// `env` with the server's keys and endpoint: what runs pullback against the bucket.
    var environmentCommand: [String] {
        let environment = server.environment.merging(["HOME": "/nonexistent"]) { $1 }
        return ["env"] + environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
    }

    /// `pullback ARGUMENTS` with the server's keys and endpoint in its environment.
    func pullback(_ fx: Fixture, _ arguments: [String], timeout: Duration = .seconds(120)) async throws
        -> CommandResult
    {
        try await fx.run(environmentCommand + [try Pullback.binaryPath()] + arguments, timeout: timeout)
    }

    /// `pullback ARGUMENTS` started in the background, with the server's keys and endpoint. `env` execs pullback, so
    /// the child's pid is pullback's.
    func spawnPullback(_ fx: Fixture, _ arguments: [String]) throws -> ChildProcess {
        try fx.spawn(environmentCommand + [try Pullback.binaryPath()] + arguments, label: "pullback-bucket")
    }

    /// Starts the stopped server again and returns once it stores and reads objects: SeaweedFS answers 500 for a
    /// few seconds after it listens, until its volumes are back.
    func restartServer() async throws {
        try await server.restart()
        let probe = "probe-\(UInt32.random(in: 0...UInt32.max))"
        let ready = try await waitUntil(timeout: .seconds(60), every: .milliseconds(200)) {
            do {
                try await put(probe, [1, 2, 3])
                return try await object(probe) == [1, 2, 3]
            } catch {
                return false
            }
        }
        try #require(ready, "SeaweedFS did not store and read an object within 60 s of its restart")
        try await delete(probe)
    }

    func object(_ key: String) async throws -> [UInt8] {
        var buffer = try await Self.onThread { try client.getObject(bucket: name, key: key, range: nil) }
        return buffer.readBytes(length: buffer.readableBytes) ?? []
    }

    func put(_ key: String, _ bytes: [UInt8]) async throws {
        _ = try await Self.onThread { try client.putObject(bucket: name, key: key, body: ByteBuffer(bytes: bytes)) }
    }

    func delete(_ key: String) async throws {
        try await Self.onThread { try client.deleteObject(bucket: name, key: key) }
    }

    /// Every key under `prefix` with its size, all pages, sorted.
    func keys(under prefix: String) async throws -> [String: UInt64] {
        try await Self.onThread {
            var keys: [String: UInt64] = [:]
            var token: String?
            repeat {
                let page = try client.listObjects(
                    bucket: name, prefix: prefix, delimiter: nil, continuationToken: token)
                for object in page.objects { keys[object.key] = object.size }
                token = page.nextContinuationToken
            } while token != nil
            return keys
        }
    }

    /// The keys of the multipart uploads under `prefix` neither completed nor aborted.
    func unfinishedUploads(under prefix: String) async throws -> [String] {
        try await Self.onThread { try client.listMultipartUploads(bucket: name, prefix: prefix).map(\.key) }
    }

    /// Runs blocking client calls on a thread of their own, off the cooperative pool.
    static func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await TestSupport.onThread(body)
    }
}
