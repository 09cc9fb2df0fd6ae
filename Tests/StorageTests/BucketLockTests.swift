import Foundation
import NIOCore
import S3
import TestSupport
import Testing

@testable import Storage

/// Locks in a bucket: made only if absent, refused naming the holder, taken over once expired, refreshed while held,
/// deleted at release.
extension BucketSuites {
    @Suite struct BucketLockTests {
        @Test func aSecondOwnerIsRefusedNamingTheHolderUntilRelease() async throws {
            try await BucketTestStore.with { bucket in
                let store = bucket.store
                let lockKey = try key("d/lock")
                let held = try store.acquireLock(lockKey, owner: "backup 4242", expiry: .seconds(60))
                let refused = #expect(throws: StoreError.self) {
                    _ = try store.acquireLock(lockKey, owner: "prune 7", expiry: .seconds(60))
                }
                #expect(refused?.code == .locked)
                #expect(refused?.lockOwner == "backup 4242")
                #expect(refused?.message.contains("backup 4242") == true)
                let record = try #require(
                    BucketLockRecord.decoded(
                        Array(
                            try bucket.client.getObject(
                                bucket: bucket.bucket, key: bucket.name("repo/d/lock"), range: nil
                            ).readableBytesView)))
                #expect(record.owner == "backup 4242")
                #expect(record.pid == ProcessInfo.processInfo.processIdentifier)
                held.release()
                held.release()
                #expect(try bucket.allKeys().isEmpty, "release deletes the lock object")
                let second = try store.acquireLock(lockKey, owner: "prune 7", expiry: .seconds(60))
                #expect(second.owner == "prune 7")
                second.release()
            }
        }

        @Test func anExpiredLockIsTakenOver() async throws {
            try await BucketTestStore.with { bucket in
                let store = bucket.store
                var dead = BucketLockRecord(owner: "killed 1", token: "t", expiry: .seconds(60))
                dead.expiresAt = Date().addingTimeInterval(-5)
                _ = try bucket.client.putObject(
                    bucket: bucket.bucket, key: bucket.name("repo/d/lock"), body: ByteBuffer(bytes: dead.encoded()))
                let taken = try store.acquireLock(key("d/lock"), owner: "backup 2", expiry: .seconds(60))
                let refused = #expect(throws: StoreError.self) {
                    _ = try store.acquireLock(key("d/lock"), owner: "backup 3", expiry: .seconds(60))
                }
                #expect(refused?.lockOwner == "backup 2")
                taken.release()
                #expect(try bucket.allKeys().isEmpty)
            }
        }

        @Test func releaseLeavesALockAnotherOwnerTookOver() async throws {
            try await BucketTestStore.with { bucket in
                let held = try bucket.store.acquireLock(key("d/lock"), owner: "backup 2", expiry: .seconds(60))
                // As if this holder had stalled past its expiry and "backup 3" had taken the lock over.
                let other = BucketLockRecord(owner: "backup 3", token: "t3", expiry: .seconds(60))
                try bucket.plant("repo/d/lock", ByteBuffer(bytes: other.encoded()))
                held.release()
                #expect(try Self.record(in: bucket)?.token == "t3", "the other owner's lock object stays")
            }
        }

        @Test(.timeLimit(.minutes(1))) func aHeldLockIsRefreshedBeforeItExpires() async throws {
            try await BucketTestStore.with { bucket in
                let store = bucket.store
                let held = try store.acquireLock(key("d/lock"), owner: "backup 5", expiry: .seconds(3))
                let first = try #require(
                    try bucket.client.headObject(bucket: bucket.bucket, key: bucket.name("repo/d/lock")))
                let firstRecord = try #require(try Self.record(in: bucket))
                // Waits for the refresh thread's first rewrite (every second here), whenever it comes.
                while try bucket.client.headObject(bucket: bucket.bucket, key: bucket.name("repo/d/lock"))?.etag
                    == first.etag
                {
                    Thread.sleep(forTimeInterval: 0.1)
                }
                let refreshed = try #require(try Self.record(in: bucket))
                #expect(refreshed.expiresAt > firstRecord.expiresAt)
                #expect(refreshed.token == firstRecord.token)
                held.release()
                #expect(try bucket.allKeys().isEmpty)
            }
        }

        @Test func somethingThatIsNotALockIsNeverTakenOver() async throws {
            try await BucketTestStore.with { bucket in
                _ = try bucket.client.putObject(
                    bucket: bucket.bucket, key: bucket.name("repo/d/lock"), body: ByteBuffer(string: "x"))
                let refused = #expect(throws: StoreError.self) {
                    _ = try bucket.store.acquireLock(key("d/lock"), owner: "backup 2", expiry: .seconds(60))
                }
                #expect(refused?.code == .locked)
                #expect(refused?.lockOwner == nil)
                #expect(
                    try bucket.client.getObject(bucket: bucket.bucket, key: bucket.name("repo/d/lock"), range: nil)
                        == ByteBuffer(string: "x"))
            }
        }

        static func record(in bucket: BucketTestStore) throws -> BucketLockRecord? {
            let body = try bucket.client.getObject(bucket: bucket.bucket, key: bucket.name("repo/d/lock"), range: nil)
            return BucketLockRecord.decoded(Array(body.readableBytesView))
        }
    }
}
