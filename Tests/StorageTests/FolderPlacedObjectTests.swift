import Foundation
import Storage
import TestSupport
import Testing

/// The folder store's placed writer: pieces written out of order from several threads, holes read as zeros, nothing
/// visible before finish, an existing object never replaced.
@Suite struct FolderPlacedObjectTests {
    func withStore(_ body: (FolderStore) throws -> Void) throws {
        let directory = try TemporaryDirectory("pbplaced")
        defer { directory.remove() }
        try body(FolderStore(root: directory.path + "/store"))
    }

    @Test func shuffledPiecesFromFourThreadsReadBackWithHolesAsZeros() throws {
        try withStore { store in
            let key = try ObjectKey("d/image")
            let content = SeededRandom.bytes(3 << 20 + 12345, seed: 7)
            let holes: Set<Int> = [0, 5, 17]
            let writer = try store.createPlaced(key, expectedSize: UInt64(content.count))
            try PlacedWrites.write(content, to: writer, pieceSize: 64 << 10, threads: 4, seed: 1, holes: holes)
            #expect(try store.open(key) == nil, "an unfinished object must not be visible")
            // Longer than what was written: the tail was never written either.
            try writer.finish(size: UInt64(content.count + 4096))
            let tail = [UInt8](repeating: 0, count: 4096)
            let expected = PlacedWrites.expected(content, pieceSize: 64 << 10, holes: holes) + tail
            #expect(try store.read(key, limit: 8 << 20) == expected)
            #expect(try store.list(under: ObjectKey("d")) == [ObjectEntry(name: "image", kind: .object)])
        }
    }

    @Test func aDiscardedOrRefusedPlacedObjectLeavesNothing() throws {
        try withStore { store in
            let key = try ObjectKey("image")
            try store.write([1], to: key)
            let second = try store.createPlaced(key, expectedSize: 10)
            try ([2, 3] as [UInt8]).withUnsafeBytes { try second.write($0, at: 4) }
            #expect((#expect(throws: StoreError.self) { try second.finish(size: 10) })?.code == .alreadyExists)
            let discarded = try store.createPlaced(ObjectKey("other"), expectedSize: 10)
            try ([2] as [UInt8]).withUnsafeBytes { try discarded.write($0, at: 0) }
            discarded.discard()
            let tooShort = try store.createPlaced(ObjectKey("short"), expectedSize: 10)
            try ([2, 3] as [UInt8]).withUnsafeBytes { try tooShort.write($0, at: 8) }
            #expect(throws: StoreError.self) { try tooShort.finish(size: 9) }
            #expect(try store.read(key, limit: 10) == [1])
            #expect(try FileManager.default.contentsOfDirectory(atPath: store.root) == ["image"])
            #expect(try store.abortLeftoverUploads(under: key) == 0)
        }
    }
}
