import NIOCore
import S3
import TestSupport
import Testing

@testable import Storage

/// The bucket's placed writer: a multipart upload fed out of order from several threads, gaps sent as zeros, and
/// nothing left behind by a writer that was discarded, refused or never finished.
extension BucketSuites {
    @Suite struct BucketPlacedObjectTests {
        @Test func fortyMiBInShuffledPiecesFromFourThreadsReadBackIdentical() async throws {
            try await BucketTestStore.with { bucket in
                let store = bucket.store
                let object = try key("d/image.qcow2")
                let content = SeededRandom.bytes(40 << 20, seed: 11)
                let holes: Set<Int> = [0, 9, 21]  // the header's piece (written last here: never) and two gaps
                let writer = try store.createPlaced(object, expectedSize: UInt64(content.count))
                #expect((writer as? BucketPlacedObjectWriter)?.partSize == 8 << 20)
                try PlacedWrites.write(content, to: writer, pieceSize: 1 << 20, threads: 4, seed: 5, holes: holes)
                #expect(try store.open(object) == nil, "an unfinished object must not be visible")
                try writer.finish(size: UInt64(content.count) + 4096)
                let expected = PlacedWrites.expected(content, pieceSize: 1 << 20, holes: holes)
                #expect(try store.read(object, limit: 64 << 20) == expected + [UInt8](repeating: 0, count: 4096))
                #expect(try bucket.openUploads().isEmpty)
            }
        }

        @Test func partSizesKeepAnyImageWithinTenThousandParts() {
            #expect(BucketStore.partSize(forExpectedSize: 0) == 8 << 20)
            #expect(BucketStore.partSize(forExpectedSize: 64 << 30) == 9 << 20)
            let fourTiB: UInt64 = 4 << 40
            let part = UInt64(BucketStore.partSize(forExpectedSize: fourTiB))
            #expect(part % (1 << 20) == 0)
            #expect((fourTiB + fourTiB / 4) / part < UInt64(BucketStore.maximumPartCount))
        }

        @Test func aDiscardedWriterLeavesNoObjectAndNoUpload() async throws {
            try await BucketTestStore.with { bucket in
                let store = bucket.store
                let content = SeededRandom.bytes(3 * BucketStore.minimumPartSize, seed: 2)
                let writer = try #require(
                    try store.createPlaced(key("d/image"), expectedSize: UInt64(content.count))
                        as? BucketPlacedObjectWriter
                )
                try content.withUnsafeBytes { try writer.write($0, at: 0) }
                try writer.sendsEnded()
                #expect(try bucket.openUploads() == ["repo/d/image"], "parts 2 and 3 were sent")
                writer.discard()
                #expect(try bucket.openUploads().isEmpty)
                #expect(try bucket.allKeys().isEmpty)
                #expect(try store.list(under: nil).isEmpty)
            }
        }

        @Test func anObjectThatAppearedMeanwhileIsNotReplacedAndTheUploadIsAborted() async throws {
            try await BucketTestStore.with { bucket in
                let store = bucket.store
                let object = try key("d/image")
                let content = SeededRandom.bytes(2 * BucketStore.minimumPartSize + 1, seed: 4)
                let writer = try store.createPlaced(object, expectedSize: UInt64(content.count))
                try content.withUnsafeBytes { try writer.write($0, at: 0) }
                try store.write([7], to: object)
                #expect(
                    (#expect(throws: StoreError.self) { try writer.finish(size: UInt64(content.count)) })?.code
                        == .alreadyExists)
                #expect(try store.read(object, limit: 10) == [7])
                #expect(try bucket.openUploads().isEmpty)
            }
        }

        @Test func leftoverUploadsOfAWriterNeverFinishedAreAborted() async throws {
            try await BucketTestStore.with { bucket in
                let store = bucket.store
                let content = SeededRandom.bytes(2 * BucketStore.minimumPartSize, seed: 6)
                let writer = try #require(
                    try store.createPlaced(key("d/p1/image"), expectedSize: 0) as? BucketPlacedObjectWriter)
                try content.withUnsafeBytes { try writer.write($0, at: 0) }
                try writer.sendsEnded()
                // Another prefix's upload stays.
                let other = try bucket.client.createMultipartUpload(
                    bucket: bucket.bucket, key: bucket.name("repo/e/image"))
                #expect(try bucket.openUploads().sorted() == ["repo/d/p1/image", "repo/e/image"])
                let generic: any ObjectStore = store
                #expect(try generic.abortLeftoverUploads(under: key("d")) == 1)
                #expect(try bucket.openUploads() == ["repo/e/image"])
                #expect(try store.abortLeftoverUploads(under: key("d")) == 0)
                try bucket.client.abortMultipartUpload(
                    bucket: bucket.bucket, key: bucket.name("repo/e/image"), uploadID: other)
                withExtendedLifetime(writer) {}
            }
        }

        @Test func bytesWrittenPastTheFinalSizeAreRefused() async throws {
            try await BucketTestStore.with { bucket in
                let writer = try bucket.store.createPlaced(key("d/short"), expectedSize: 10)
                try ([1, 2] as [UInt8]).withUnsafeBytes { try writer.write($0, at: 8) }
                #expect(throws: StoreError.self) { try writer.finish(size: 9) }
                #expect(try bucket.allKeys().isEmpty)
            }
        }
    }
}
