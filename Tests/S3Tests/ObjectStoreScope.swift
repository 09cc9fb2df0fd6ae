import Foundation
import S3
import TestSupport
import Testing

/// One SeaweedFS server for a whole suite: started before its first test, stopped after its last. Tests reach it
/// through `ObjectStoreScope.server`.
struct ObjectStoreScope: SuiteTrait, TestScoping {
    @TaskLocal static var server: ObjectStoreServer?

    var isRecursive: Bool { false }

    func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        try await Fixture.run { fixture in
            let server = try await ObjectStoreServer.start(fixture)
            try await Self.$server.withValue(server) { try await function() }
        }
    }

    /// The suite's server; fails the test outside a suite with the trait.
    static func current() throws -> ObjectStoreServer {
        try #require(server, "the suite has no .objectStore trait")
    }
}

extension Trait where Self == ObjectStoreScope {
    /// A SeaweedFS server for the suite.
    static var objectStore: Self { ObjectStoreScope() }
}

/// Runs blocking S3 calls on a thread of their own, never on the cooperative pool.
func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// A client of `server` (its keys and endpoint, `overrides` on top), and a bucket of its own for the test.
struct TestStore: Sendable {
    let client: S3Client
    let bucket: String

    static func make(
        _ server: ObjectStoreServer, overrides: [String: String] = [:], retries: Int = 8, bucket: Bool = true
    ) async throws -> TestStore {
        var configuration = try S3Configuration.fromEnvironment(
            server.environment.merging(["HOME": "/nonexistent"]) { $1 }.merging(overrides) { $1 }, allowHTTP: false)
        configuration.retries = retries
        configuration.requestTimeout = .seconds(30)
        let client = try S3Client(configuration)
        let name = "pb-" + UUID().uuidString.lowercased().prefix(18)
        if bucket {
            try await blocking { try client.createBucket(String(name)) }
        }
        return TestStore(client: client, bucket: String(name))
    }

    /// Shuts the client down on a thread of its own.
    func close() async throws {
        try await blocking { client.shutdown() }
    }
}

/// `count` bytes from a seeded generator: the same for the same seed.
func testBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var generator = SeededRandom(seed: seed)
    var bytes = [UInt8]()
    bytes.reserveCapacity(count + 8)
    while bytes.count < count {
        withUnsafeBytes(of: generator.next()) { bytes.append(contentsOf: $0) }
    }
    return Array(bytes.prefix(count))
}
