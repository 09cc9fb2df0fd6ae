import S3
import TestSupport
import Testing

@testable import Storage

/// Replacing an object by a server-side copy, as a bucket installs a rewritten point: the bytes compared.
extension BucketSuites {
    @Suite struct BucketCopyTests {
        @Test func aCopyReplacesAnObjectOrMakesOneAndAMissingSourceChangesNothing() async throws {
            try await BucketTestStore.with { bucket in
                let store = bucket.store
                let source = try key("d/p.rewrite.copy.partial/image")
                let target = try key("d/p/image")
                try store.write([1, 2, 3], to: source)
                try store.write([9, 9], to: target)
                try store.copy(source, replacing: target)
                #expect(try store.read(target, limit: 100) == [1, 2, 3])
                #expect(try store.read(source, limit: 100) == [1, 2, 3])
                let fresh = try key("d/p/blocks")
                try store.copy(source, replacing: fresh)
                #expect(try store.read(fresh, limit: 100) == [1, 2, 3])
                let missing = #expect(throws: StoreError.self) {
                    try store.copy(key("d/p.rewrite.copy.partial/none"), replacing: target)
                }
                #expect(missing?.code == .notAnObject && missing?.message.contains("none") == true, "\(missing)")
                #expect(try store.read(target, limit: 100) == [1, 2, 3])
                #expect(
                    try bucket.allKeys() == [
                        "repo/d/p.rewrite.copy.partial/image", "repo/d/p/blocks", "repo/d/p/image",
                    ])
            }
        }
    }
}

/// A folder replaces a point whole, by a rename: it never copies over an object, and says so.
@Suite struct FolderCopyTests {
    @Test func aFolderRefusesToReplaceAnObjectByACopy() throws {
        let directory = try TemporaryDirectory("pbcopy")
        defer { directory.remove() }
        let store = FolderStore(root: directory.path + "/store")
        try store.createRoot()
        try store.write([1], to: key("a"))
        try store.write([2], to: key("b"))
        let refused = #expect(throws: StoreError.self) { try store.copy(key("a"), replacing: key("b")) }
        #expect(refused?.code == .unsupported, "\(refused)")
        #expect(try store.read(key("b"), limit: 10) == [2])
    }
}
