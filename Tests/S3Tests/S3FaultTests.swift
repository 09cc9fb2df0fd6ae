import Foundation
import NIOCore
import S3
import TestSupport
import Testing

/// Retries: a store that goes away for a few seconds is waited for; an endpoint where nothing listens fails in one
/// line once the retries are spent. The stopped store has a server of its own, so that the suite sharing one is not
/// disturbed.
@Suite(.timeLimit(.minutes(2)))
struct S3FaultTests {
    @Test func storeStoppedForAFewSecondsIsRetried() async throws {
        try await Fixture.run { fixture in
            let server = try await ObjectStoreServer.start(fixture)
            let store = try await TestStore.make(server, retries: 10)
            let body = testBytes(100_000, seed: 5)
            try await blocking {
                _ = try store.client.putObject(bucket: store.bucket, key: "before", body: ByteBuffer(bytes: body))
            }
            server.stop()
            // The calls below start while nothing listens; the server comes back a second later.
            async let restarted: Void = {
                try await Task.sleep(for: .seconds(1))
                try await server.restart()
            }()
            let (read, written) = try await blocking {
                let read = try store.client.getObject(bucket: store.bucket, key: "before", range: 10..<20_010)
                let written = try store.client.putObject(
                    bucket: store.bucket, key: "after", body: ByteBuffer(string: "ok"))
                return (read, written)
            }
            try await restarted
            let head = try await blocking { try store.client.headObject(bucket: store.bucket, key: "after") }
            #expect(Array(buffer: read) == Array(body[10..<20_010]))
            #expect(head == S3ObjectHead(size: 2, etag: written))
            try await store.close()
        }
    }

    @Test func nothingListeningIsUnreachableAfterRetries() async throws {
        // A port nobody listens on: bound here and closed again is the best guess without racing anybody.
        var configuration = try S3Configuration.fromEnvironment(
            [
                "HOME": "/nonexistent", "AWS_ACCESS_KEY_ID": "K", "AWS_SECRET_ACCESS_KEY": "secret-not-shown",
                "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            ], allowHTTP: false)
        configuration.retries = 1
        configuration.connectTimeout = .milliseconds(300)
        let client = try S3Client(configuration)
        let result = try await blocking {
            Result { () throws(S3Error) in try client.headObject(bucket: "bucket", key: "some/key") }
        }
        try await blocking { client.shutdown() }
        guard case .failure(let error) = result else {
            Issue.record("a closed port answered")
            return
        }
        #expect(error.code == .unreachable)
        #expect(error.status == nil)
        #expect(error.message.hasPrefix("S3 HeadObject s3://bucket/some/key: cannot reach http://127.0.0.1:9 ("))
        #expect(error.message.hasSuffix("): check AWS_ENDPOINT_URL and that the store is running (after 2 attempts)"))
        #expect(!error.message.contains("\n"))
        #expect(!error.message.contains("secret-not-shown"))
    }
}
