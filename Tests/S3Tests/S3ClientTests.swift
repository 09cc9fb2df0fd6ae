import Foundation
import NIOCore
import TestSupport
import Testing

@testable import S3

/// The client against a real SeaweedFS: objects, listing, conditional writes, multipart uploads and the one-line
/// errors for wrong keys and missing buckets. Each test has a bucket of its own on the suite's server.
@Suite(.objectStore, .timeLimit(.minutes(2)))
struct S3ClientTests {
    @Test func putGetHeadAndRangedGet() async throws {
        let store = try await TestStore.make(try ObjectStoreScope.current())
        // 3 MiB goes unsigned (over 1 MiB), the small object with its hash signed.
        let large = testBytes(3 << 20, seed: 1)
        let small = Array("small object, signed payload".utf8)
        let (largeTag, smallTag, head, whole, ranged, tail, short) = try await blocking {
            let client = store.client
            let largeTag = try client.putObject(
                bucket: store.bucket, key: "dir/large object ሴ+1", body: ByteBuffer(bytes: large))
            let smallTag = try client.putObject(bucket: store.bucket, key: "small", body: ByteBuffer(bytes: small))
            let head = try client.headObject(bucket: store.bucket, key: "dir/large object ሴ+1")
            let whole = try client.getObject(bucket: store.bucket, key: "dir/large object ሴ+1", range: nil)
            let ranged = try client.getObject(bucket: store.bucket, key: "dir/large object ሴ+1", range: 1000..<200_000)
            let tail = try client.getObject(
                bucket: store.bucket, key: "dir/large object ሴ+1", range: UInt64(large.count - 10)..<UInt64(large.count)
            )
            let short = try client.getObject(bucket: store.bucket, key: "small", range: nil)
            return (largeTag, smallTag, head, whole, ranged, tail, short)
        }
        #expect(head == S3ObjectHead(size: UInt64(large.count), etag: largeTag))
        // What recognises a write whose answer was lost: SeaweedFS's entity tag is the body's MD5, as S3's.
        #expect(largeTag == ConditionalWriteCheck.singlePartETag(ByteBuffer(bytes: large)))
        #expect(largeTag != smallTag)
        #expect(Array(buffer: whole) == large)
        #expect(Array(buffer: ranged) == Array(large[1000..<200_000]))
        #expect(Array(buffer: tail) == Array(large.suffix(10)))
        #expect(Array(buffer: short) == small)
        try await store.close()
    }

    @Test func listingWithDelimiterAndPages() async throws {
        let store = try await TestStore.make(try ObjectStoreScope.current())
        let keys =
            (0..<23).map { String(format: "p/a/%02d", $0) } + ["p/b/x", "p/b/y", "p/top one", "p/ሴ+%", "q/other"]
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, key) in keys.enumerated() {
                group.addTask {
                    _ = try await blocking {
                        try store.client.putObject(
                            bucket: store.bucket, key: key, body: ByteBuffer(bytes: Array(repeating: 7, count: index)))
                    }
                }
            }
            try await group.waitForAll()
        }
        let (rolledUp, pages) = try await blocking {
            let rolledUp = try store.client.listObjects(
                bucket: store.bucket, prefix: "p/", delimiter: "/", continuationToken: nil)
            var pages: [S3ListPage] = []
            var token: String?
            repeat {
                let page = try store.client.listObjects(
                    bucket: store.bucket, prefix: "p/", delimiter: nil, continuationToken: token, maxKeys: 7)
                pages.append(page)
                token = page.nextContinuationToken
            } while token != nil && pages.count < 20
            return (rolledUp, pages)
        }
        #expect(rolledUp.commonPrefixes == ["p/a/", "p/b/"])
        #expect(rolledUp.objects.map(\.key) == ["p/top one", "p/ሴ+%"])
        #expect(rolledUp.nextContinuationToken == nil)
        let expected = keys.filter { $0.hasPrefix("p/") }.sorted { Array($0.utf8).lexicographicallyPrecedes($1.utf8) }
        #expect(pages.count == 4)
        #expect(pages.dropLast().allSatisfy { $0.objects.count == 7 })
        #expect(pages.flatMap(\.objects).map(\.key) == expected)
        let sizes = Dictionary(uniqueKeysWithValues: keys.enumerated().map { ($1, UInt64($0)) })
        #expect(pages.flatMap(\.objects).allSatisfy { sizes[$0.key] == $0.size })
        try await store.close()
    }

    @Test func deleteAndMissingObjects() async throws {
        let store = try await TestStore.make(try ObjectStoreScope.current())
        let (headAfter, missingGet) = try await blocking {
            let client = store.client
            try client.putObject(bucket: store.bucket, key: "gone", body: ByteBuffer(string: "x"))
            try client.deleteObject(bucket: store.bucket, key: "gone")
            try client.deleteObject(bucket: store.bucket, key: "never-was")
            let headAfter = try client.headObject(bucket: store.bucket, key: "gone")
            let missingGet = Result { () throws(S3Error) in
                try client.getObject(bucket: store.bucket, key: "gone", range: nil)
            }
            return (headAfter, missingGet)
        }
        #expect(headAfter == nil)
        guard case .failure(let error) = missingGet else {
            Issue.record("GET of a deleted object succeeded")
            return
        }
        #expect(error.code == .noSuchKey)
        #expect(error.status == 404)
        #expect(error.message.hasPrefix("S3 GetObject s3://\(store.bucket)/gone: HTTP 404 NoSuchKey"))
        #expect(error.message.hasSuffix(": the object does not exist: check the key"))
        try await store.close()
    }

    /// Create-if-absent and replace-if-unchanged, what the bucket store's lock and commit rely on.
    @Test func conditionalPuts() async throws {
        let store = try await TestStore.make(try ObjectStoreScope.current())
        let outcome = try await blocking {
            let client = store.client
            let first = try client.putObject(
                bucket: store.bucket, key: "lock", body: ByteBuffer(string: "one"), ifNoneMatch: true)
            let again = Result { () throws(S3Error) in
                try client.putObject(
                    bucket: store.bucket, key: "lock", body: ByteBuffer(string: "two"), ifNoneMatch: true)
            }
            let wrongTag = Result { () throws(S3Error) in
                try client.putObject(
                    bucket: store.bucket, key: "lock", body: ByteBuffer(string: "three"),
                    ifMatch: "\"0123456789abcdef0123456789abcdef\"")
            }
            let second = try client.putObject(
                bucket: store.bucket, key: "lock", body: ByteBuffer(string: "four"), ifMatch: first)
            let content = try client.getObject(bucket: store.bucket, key: "lock", range: nil)
            return (first, again, wrongTag, second, content)
        }
        let (first, again, wrongTag, second, content) = outcome
        #expect(throws: S3Error.self) { try again.get() }
        #expect((try? again.get()) == nil)
        if case .failure(let error) = again {
            #expect(error.code == .preconditionFailed)
            #expect(error.status == 412)
            #expect(error.message.hasPrefix("S3 PutObject s3://\(store.bucket)/lock: HTTP 412"))
        }
        if case .failure(let error) = wrongTag {
            #expect(error.code == .preconditionFailed)
        } else {
            Issue.record("If-Match with a wrong entity tag replaced the object")
        }
        #expect(second != first)
        #expect(String(buffer: content) == "four")
        try await store.close()
    }

    @Test func multipartUploadOutOfOrder() async throws {
        let store = try await TestStore.make(try ObjectStoreScope.current())
        let parts = [testBytes(5 << 20, seed: 11), testBytes(5 << 20, seed: 12), testBytes(1234, seed: 13)]
        let (whole, leftover, tag, expectedTag) = try await blocking {
            let client = store.client
            let key = "images/disk.qcow2"
            let upload = try client.createMultipartUpload(bucket: store.bucket, key: key)
            var completed: [S3CompletedPart] = []
            for number in [3, 1, 2] {
                let tag = try client.uploadPart(
                    bucket: store.bucket, key: key, uploadID: upload, partNumber: number,
                    body: ByteBuffer(bytes: parts[number - 1]))
                completed.append(S3CompletedPart(partNumber: number, etag: tag))
            }
            try client.completeMultipartUpload(bucket: store.bucket, key: key, uploadID: upload, parts: completed)
            let whole = try client.getObject(bucket: store.bucket, key: key, range: nil)
            let leftover = try client.listMultipartUploads(bucket: store.bucket, prefix: "images/")
            let tag = try client.headObject(bucket: store.bucket, key: key)?.etag
            return (whole, leftover, tag, ConditionalWriteCheck.multipartETag(completed))
        }
        #expect(Array(buffer: whole) == parts.flatMap { $0 })
        // A completed upload's entity tag is the MD5 of its parts' MD5s and the count, as S3's.
        #expect(tag != nil && tag == expectedTag)
        #expect(leftover.isEmpty)
        try await store.close()
    }

    @Test func abortedUploadLeavesNothing() async throws {
        let store = try await TestStore.make(try ObjectStoreScope.current())
        let (listed, afterAbort, objects) = try await blocking {
            let client = store.client
            let kept = try client.createMultipartUpload(bucket: store.bucket, key: "other/k")
            let upload = try client.createMultipartUpload(bucket: store.bucket, key: "pt/a b")
            _ = try client.uploadPart(
                bucket: store.bucket, key: "pt/a b", uploadID: upload, partNumber: 1, body: ByteBuffer(string: "part"))
            let listed = try client.listMultipartUploads(bucket: store.bucket, prefix: "pt/")
            try client.abortMultipartUpload(bucket: store.bucket, key: "pt/a b", uploadID: upload)
            let afterAbort = try client.listMultipartUploads(bucket: store.bucket, prefix: "pt/")
            try client.abortMultipartUpload(bucket: store.bucket, key: "other/k", uploadID: kept)
            let objects = try client.listObjects(
                bucket: store.bucket, prefix: "", delimiter: nil, continuationToken: nil)
            return (listed.map { [$0.key, $0.uploadID] }, afterAbort, objects)
        }
        #expect(listed.count == 1)
        #expect(listed.first?.first == "pt/a b")
        #expect(afterAbort.isEmpty)
        #expect(objects.objects.isEmpty)
        try await store.close()
    }

    @Test func wrongSecretIsAccessDeniedInOneLine() async throws {
        let server = try ObjectStoreScope.current()
        let store = try await TestStore.make(server)
        let wrong = try await TestStore.make(
            server, overrides: ["AWS_SECRET_ACCESS_KEY": "not-the-secret-at-all"], retries: 1, bucket: false)
        let result = try await blocking {
            Result { () throws(S3Error) in
                try wrong.client.putObject(bucket: store.bucket, key: "k", body: ByteBuffer(string: "x"))
            }
        }
        guard case .failure(let error) = result else {
            Issue.record("a wrong secret was accepted")
            return
        }
        #expect(error.code == .accessDenied)
        #expect(error.status == 403)
        #expect(error.message.hasPrefix("S3 PutObject s3://\(store.bucket)/k: HTTP 403 "))
        #expect(error.message.hasSuffix(": check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and the bucket's permissions"))
        #expect(!error.message.contains("\n"))
        #expect(!error.message.contains("not-the-secret-at-all"))
        #expect(!error.message.contains(server.secretAccessKey))
        try await wrong.close()
        try await store.close()
    }

    @Test func missingBucketIsNoSuchBucket() async throws {
        let store = try await TestStore.make(try ObjectStoreScope.current(), bucket: false)
        let (head, put, delete) = try await blocking {
            (
                Result { () throws(S3Error) in try store.client.headBucket(store.bucket) },
                Result { () throws(S3Error) in
                    try store.client.putObject(bucket: store.bucket, key: "k", body: ByteBuffer(string: "x"))
                },
                Result { () throws(S3Error) in try store.client.deleteObject(bucket: store.bucket, key: "k") }
            )
        }
        for result in [head.map { "" }, put, delete.map { "" }] {
            guard case .failure(let error) = result else {
                Issue.record("a missing bucket was found")
                continue
            }
            #expect(error.code == .noSuchBucket)
            #expect(error.message.hasSuffix(": check the bucket name and AWS_REGION"))
            #expect(error.message.contains("s3://\(store.bucket)"))
        }
        try await store.close()
    }
}
