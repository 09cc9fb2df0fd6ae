import Foundation
import NIOCore
import S3
import TestSupport
import Testing

/// The conditions the bucket store's lock takeover and create-if-absent commit rely on beyond PutObject's, as
/// SeaweedFS answers them: If-Match on DeleteObject, If-None-Match on CompleteMultipartUpload.
@Suite(.objectStore, .timeLimit(.minutes(2)))
struct SeaweedFSConditionsTests {
    @Test func deleteIfMatch() async throws {
        let store = try await TestStore.make(try ObjectStoreScope.current())
        let (wrong, headAfterWrong, headAfterRight) = try await blocking {
            let client = store.client
            let tag = try client.putObject(bucket: store.bucket, key: "lock", body: ByteBuffer(string: "holder"))
            let wrong = Result { () throws(S3Error) in
                try client.deleteObject(
                    bucket: store.bucket, key: "lock", ifMatch: "\"00000000000000000000000000000000\"")
            }
            let headAfterWrong = try client.headObject(bucket: store.bucket, key: "lock")
            try client.deleteObject(bucket: store.bucket, key: "lock", ifMatch: tag)
            return (wrong, headAfterWrong, try client.headObject(bucket: store.bucket, key: "lock"))
        }
        guard case .failure(let error) = wrong else {
            Issue.record("a delete with a wrong If-Match succeeded")
            return
        }
        #expect(error.code == .preconditionFailed)
        #expect(headAfterWrong?.size == 6)
        #expect(headAfterRight == nil)
        try await store.close()
    }

    @Test func completeIfNoneMatch() async throws {
        let store = try await TestStore.make(try ObjectStoreScope.current())
        let (existing, existingContent, absentContent) = try await blocking {
            let client = store.client
            try client.putObject(bucket: store.bucket, key: "exists", body: ByteBuffer(string: "old"))
            var outcomes: [Result<Void, S3Error>] = []
            for key in ["exists", "absent"] {
                let upload = try client.createMultipartUpload(bucket: store.bucket, key: key)
                let tag = try client.uploadPart(
                    bucket: store.bucket, key: key, uploadID: upload, partNumber: 1, body: ByteBuffer(string: "new"))
                outcomes.append(
                    Result { () throws(S3Error) in
                        try client.completeMultipartUpload(
                            bucket: store.bucket, key: key, uploadID: upload,
                            parts: [S3CompletedPart(partNumber: 1, etag: tag)], ifNoneMatch: true)
                    })
                if case .failure = outcomes.last {
                    try client.abortMultipartUpload(bucket: store.bucket, key: key, uploadID: upload)
                }
            }
            _ = try outcomes[1].get()
            return (
                outcomes[0], try client.getObject(bucket: store.bucket, key: "exists", range: nil),
                try client.getObject(bucket: store.bucket, key: "absent", range: nil)
            )
        }
        guard case .failure(let error) = existing else {
            Issue.record("completed over an existing key")
            return
        }
        #expect(error.code == .preconditionFailed)
        #expect(error.message.hasPrefix("S3 CompleteMultipartUpload s3://\(store.bucket)/exists: HTTP 412"))
        #expect(String(buffer: existingContent) == "old")
        #expect(String(buffer: absentContent) == "new")
        try await store.close()
    }
}

/// A conditional write whose answer is lost: the store wrote the object, the client's retry is refused (412 or no
/// such upload), and the client recognises the object as its own write by its entity tag.
@Suite(.objectStore, .timeLimit(.minutes(2)))
struct LostAnswerTests {
    @Test func createIfAbsentPutSucceedsWhenItsAnswerWasLost() async throws {
        let server = try ObjectStoreScope.current()
        let direct = try await TestStore.make(server)
        let proxy = try AnswerDroppingProxy(upstreamPort: server.port) { $0.hasPrefix("PUT /\(direct.bucket)/lock ") }
        defer { proxy.close() }
        let viaProxy = try await TestStore.make(
            server, overrides: ["AWS_ENDPOINT_URL": "http://127.0.0.1:\(proxy.port)"], retries: 3, bucket: false)
        let (tag, head, other) = try await blocking {
            let tag = try viaProxy.client.putObject(
                bucket: direct.bucket, key: "lock", body: ByteBuffer(string: "owner A"), ifNoneMatch: true)
            let head = try direct.client.headObject(bucket: direct.bucket, key: "lock")
            let other = Result { () throws(S3Error) in
                try viaProxy.client.putObject(
                    bucket: direct.bucket, key: "lock", body: ByteBuffer(string: "owner B"), ifNoneMatch: true)
            }
            return (tag, head, other)
        }
        #expect(proxy.droppedRequests.count == 1)
        #expect(head?.etag == tag)
        // Another writer's create-if-absent still fails: its bytes do not make the object's entity tag.
        guard case .failure(let error) = other else {
            Issue.record("a second create-if-absent succeeded")
            return
        }
        #expect(error.code == .preconditionFailed)
        try await viaProxy.close()
        try await direct.close()
    }

    @Test func completeSucceedsWhenItsAnswerWasLost() async throws {
        let server = try ObjectStoreScope.current()
        let direct = try await TestStore.make(server)
        let proxy = try AnswerDroppingProxy(upstreamPort: server.port) {
            $0.hasPrefix("POST /\(direct.bucket)/manifest?uploadId=")
        }
        defer { proxy.close() }
        let viaProxy = try await TestStore.make(
            server, overrides: ["AWS_ENDPOINT_URL": "http://127.0.0.1:\(proxy.port)"], retries: 3, bucket: false)
        let content = try await blocking {
            let client = viaProxy.client
            let upload = try client.createMultipartUpload(bucket: direct.bucket, key: "manifest")
            let first = try client.uploadPart(
                bucket: direct.bucket, key: "manifest", uploadID: upload, partNumber: 1,
                body: ByteBuffer(bytes: testBytes(5 << 20, seed: 3)))
            let second = try client.uploadPart(
                bucket: direct.bucket, key: "manifest", uploadID: upload, partNumber: 2, body: ByteBuffer(string: "end")
            )
            try client.completeMultipartUpload(
                bucket: direct.bucket, key: "manifest", uploadID: upload,
                parts: [S3CompletedPart(partNumber: 1, etag: first), S3CompletedPart(partNumber: 2, etag: second)],
                ifNoneMatch: true)
            return try direct.client.getObject(bucket: direct.bucket, key: "manifest", range: nil)
        }
        #expect(proxy.droppedRequests.count == 1)
        #expect(Array(buffer: content) == testBytes(5 << 20, seed: 3) + Array("end".utf8))
        try await viaProxy.close()
        try await direct.close()
    }
}
