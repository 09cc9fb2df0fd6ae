import NIOCore
import S3
import TestSupport
import Testing

@testable import Storage

/// The bucket store against a real SeaweedFS: every store operation with its bytes compared, groups written in
/// place, and names from the bucket that cannot be keys.
extension BucketSuites {
    @Suite struct BucketStoreTests {
        @Test func objectsAreInvisibleUntilFinishedReadByRangeAndNeverReplaced() async throws {
            try await BucketTestStore.with { bucket in
                let store = bucket.store
                #expect(try store.rootState() == .empty(temporaries: []))
                try store.createRoot()
                let object = try key("a/b/data")
                #expect(store.location(of: object) == "s3://\(bucket.bucket)/\(bucket.top)/repo/a/b/data")
                #expect(store.location(of: nil) == "s3://\(bucket.bucket)/\(bucket.top)/repo")
                #expect(store.localPath(of: object) == nil)
                let writer = try store.create(object)
                try ([1, 2, 3, 4, 5] as [UInt8]).withUnsafeBytes { try writer.append($0) }
                #expect(try store.open(object) == nil, "an unfinished object must not be visible")
                try ([6, 7] as [UInt8]).withUnsafeBytes { try writer.append($0) }
                try writer.finish()
                #expect(try bucket.allKeys() == ["repo/a/b/data"])
                #expect(try store.rootState() == .populated)
                let reader = try #require(try store.open(object))
                #expect(reader.size == 7)
                var buffer = [UInt8](repeating: 0, count: 3)
                #expect(try buffer.withUnsafeMutableBytes { try reader.read(into: $0, at: 2) } == 3)
                #expect(buffer == [3, 4, 5])
                #expect(try buffer.withUnsafeMutableBytes { try reader.read(into: $0, at: 7) } == 0)
                #expect(try store.read(object, limit: 100) == [1, 2, 3, 4, 5, 6, 7])
                #expect(store.storedBytes(of: object) == 7)
                #expect(store.storedBytes(of: try key("a/missing")) == 0)
                let second = try store.create(object)
                try ([9] as [UInt8]).withUnsafeBytes { try second.append($0) }
                #expect((#expect(throws: StoreError.self) { try second.finish() })?.code == .alreadyExists)
                #expect(try store.read(object, limit: 100) == [1, 2, 3, 4, 5, 6, 7])
            }
        }

        @Test func anObjectThatShrankWhileOpenIsAnErrorNotAShortRead() async throws {
            try await BucketTestStore.with { bucket in
                let store = bucket.store
                let object = try key("d/data")
                try store.write(Array(1...7), to: object)
                let reader = try #require(try store.open(object))
                try store.delete(object)
                try store.write([9, 9, 9], to: object)
                var buffer = [UInt8](repeating: 0, count: 7)
                let error = #expect(throws: StoreError.self) {
                    _ = try buffer.withUnsafeMutableBytes { try reader.read(into: $0, at: 0) }
                }
                #expect(error?.code == .io)
                #expect(error?.message.contains("3 bytes") == true, "\(String(describing: error))")
            }
        }

        @Test func anObjectOfSeveralPartsStreamsThroughAMultipartUpload() async throws {
            try await BucketTestStore.with { bucket in
                let store = bucket.store
                let object = try key("d/big")
                let content = SeededRandom.bytes(2 * BucketStore.minimumPartSize + 12345, seed: 3)
                let writer = try store.create(object)
                for start in stride(from: 0, to: content.count, by: 1 << 20) {
                    try content[start..<min(start + (1 << 20), content.count)].withUnsafeBytes { try writer.append($0) }
                }
                #expect(try store.open(object) == nil)
                try writer.finish()
                #expect(try store.read(object, limit: 64 << 20) == content)
                #expect(try bucket.openUploads().isEmpty)
                let again = try store.create(object)
                try content.withUnsafeBytes { try again.append($0) }
                #expect((#expect(throws: StoreError.self) { try again.finish() })?.code == .alreadyExists)
                #expect(try bucket.openUploads().isEmpty, "a refused upload is aborted")
                #expect(try store.read(object, limit: 64 << 20) == content)
            }
        }

        @Test func listingKindsDeletionAndTreesStayUnderThePrefix() async throws {
            try await BucketTestStore.with { bucket in
                let store = bucket.store
                try store.write([1], to: key("d/p1/m"))
                try store.write([2], to: key("d/p1/sub/x"))
                try store.write([3], to: key("d/p10/m"))
                try store.write([4], to: key("d/x"))
                // Beside the prefix: never listed, never deleted.
                let outside = ["repo2/d/secret", "repox", "d/y"]
                for name in outside { try bucket.plant(name) }
                #expect(try store.list(under: nil) == [ObjectEntry(name: "d", kind: .prefix)])
                #expect(
                    try store.list(under: key("d")) == [
                        ObjectEntry(name: "p1", kind: .prefix), ObjectEntry(name: "p10", kind: .prefix),
                        ObjectEntry(name: "x", kind: .object),
                    ])
                #expect(try store.list(under: key("missing")).isEmpty)
                #expect(try store.kind(of: key("d/x")) == .object)
                #expect(try store.kind(of: key("d/p1")) == .prefix)
                #expect(try store.kind(of: key("d/p")) == nil)
                try store.delete(key("d/x"))
                try store.delete(key("d/x"))
                try store.deleteTree(key("d/p1"))
                try store.deleteTree(key("d/none"))
                #expect(try store.list(under: key("d")) == [ObjectEntry(name: "p10", kind: .prefix)])
                #expect(try bucket.allKeys() == (["repo/d/p10/m"] + outside).sorted())
                try store.deleteTree(key("d"))
                #expect(try store.list(under: nil).isEmpty, "emptied folders are not listed")
                #expect(try store.rootState() == .empty(temporaries: []))
                #expect(try bucket.allKeys() == outside.sorted())
            }
        }

        @Test func listingAndTreeDeletionReadEveryPage() async throws {
            try await BucketTestStore.with { bucket in
                var store = bucket.store
                store.listPageSize = 2
                let objects = ["a", "b", "c", "d", "e"]
                let prefixes = ["p", "q", "r"]
                for name in objects { try store.write([1], to: key("d/" + name)) }
                for name in prefixes { try store.write([2], to: key("d/\(name)/m")) }
                #expect(
                    try store.list(under: key("d"))
                        == (objects.map { ObjectEntry(name: $0, kind: .object) }
                        + prefixes.map { ObjectEntry(name: $0, kind: .prefix) })
                        .sorted { $0.name < $1.name })
                try store.deleteTree(key("d"))
                #expect(try bucket.allKeys().isEmpty)
            }
        }

        @Test func aGroupIsWrittenInPlaceAndWithdrawnByItsCommitObjectFirst() async throws {
            try await BucketTestStore.with { bucket in
                let store = bucket.store
                let group = try key("d/p1")
                #expect(store.writesGroupsInPlace)
                #expect(try store.beginGroup(group, stagingAt: key("d/p1.partial")) == group)
                try store.write([1], to: group.appending("image"))
                try store.write([2], to: group.appending("manifest"))
                try store.publish(group, as: group, replacing: false)
                let replaced = #expect(throws: StoreError.self) { try store.publish(group, as: group, replacing: true) }
                #expect(replaced?.code == .unsupported)
                #expect(try store.withdraw(group, to: key("d/p1.removed"), commit: "manifest") == group)
                #expect(try store.list(under: group) == [ObjectEntry(name: "image", kind: .object)])
                try store.deleteTree(group)
                #expect(try store.list(under: key("d")).isEmpty)
                #expect(store.makePrivate(nil, depth: 3) == 0)
            }
        }

        @Test func namesThatCannotBeKeysAreListedAsTheyAreAndNothingOutsideThePrefix() async throws {
            try await BucketTestStore.with { bucket in
                let store = bucket.store
                try store.write([1], to: key("d/ok"))
                try bucket.plant("repo/d/bad\u{1}name")
                let names = try store.list(under: key("d")).map(\.name)
                #expect(names == ["bad\u{1}name", "ok"])
                // SeaweedFS refuses `..` and `.` components and folds `//`, so a server's answer is checked directly.
                #expect(BucketStore.childName("repo/d/../x", under: "repo/d/") == "../x")
                #expect(BucketStore.childName("repo/d/", under: "repo/d/") == "")
                #expect(BucketStore.childName("repo2/d/x", under: "repo/d/") == nil)
                #expect(BucketStore.childName("other", under: "repo/") == nil)
                for name in ["..", "", "../x", "."] {
                    #expect(throws: StoreError.self, "\(name.debugDescription)") { _ = try key("d").appending(name) }
                }
            }
        }

        @Test func aMissingBucketIsAnErrorInOneLine() async throws {
            try await BucketTestStore.with { bucket in
                let missing = try BucketStore(client: bucket.client, bucket: bucket.bucket + "-missing", prefix: "")
                let error = #expect(throws: StoreError.self) { _ = try missing.rootState() }
                #expect(error?.cause is S3Error)
                #expect(error?.message.contains(bucket.bucket + "-missing") == true, "\(String(describing: error))")
                #expect(error?.message.contains("\n") == false)
                #expect(throws: StoreError.self) { try missing.createRoot() }
                #expect(throws: StoreError.self) {
                    _ = try BucketStore(client: bucket.client, bucket: "b", prefix: "a/../b")
                }
            }
        }
    }
}
