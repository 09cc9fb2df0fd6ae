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
            let shared = try await ServerBucket.start(fixture, named: Self.bucket, BucketTestStore.configure)
            // Each test makes a client of its own (``BucketTestStore/with(_:)``).
            await shared.close()
            try await Self.$server.withValue(shared.server) { try await function() }
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
            let client = try S3Client(try ServerBucket.configuration(of: server, configure))
            defer { client.shutdown() }
            let top = "t" + UUID().uuidString.lowercased().prefix(13)
            let store = try BucketStore(client: client, bucket: BucketTestServer.bucket, prefix: top + "/repo")
            try body(BucketTestStore(client: client, bucket: BucketTestServer.bucket, top: top, store: store))
        }
    }

    /// What the suites' clients change in a server's configuration (``ServerBucket/configuration(of:_:)``): 30 s
    /// per attempt.
    static func configure(_ configuration: inout S3Configuration) {
        configuration.requestTimeout = .seconds(30)
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

func key(_ text: String) throws -> ObjectKey { try ObjectKey(text) }
