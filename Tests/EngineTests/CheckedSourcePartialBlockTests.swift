import Engine
import Testing

/// `--check-source` must not call "missed" what a dirty bitmap finer than a block did mark: QEMU's default bitmap
/// granularity is the disk's cluster size (4 KiB to 64 KiB), so a qcow2 disk with 4 KiB clusters marks a 4 KiB guest
/// write as 4 KiB dirty, and the block around it differs from the parent's because of that write alone.
@Suite("CheckedSource: a block the bitmap marks in part")
struct CheckedSourcePartialBlockTests {
    static let k4: UInt64 = 4096
    static let k64: UInt64 = 65536

    @Test("a block whose change the bitmap marked at 4 KiB granularity is not counted as missed")
    func partlyDirtyBlockIsNotMissed() async throws {
        // Block 0 changed by one 4 KiB write, which the bitmap marks; block 1 is unchanged.
        let map = CheckedSourceTests.FixedMap(extents: [
            SourceExtent(offset: 0, length: Self.k4, content: .data, isDirty: true),
            SourceExtent(offset: Self.k4, length: 2 * Self.k64 - Self.k4, content: .data, isDirty: false),
        ])
        // The disk's hashes differ from the parent's in block 0 only: the one the 4 KiB write fell in.
        let changed = [UInt8](repeating: 1, count: 10).withUnsafeBytes { BlockHash(of: $0) }
        let before = [UInt8](repeating: 2, count: 10).withUnsafeBytes { BlockHash(of: $0) }
        let unchanged = [UInt8](repeating: 3, count: 10).withUnsafeBytes { BlockHash(of: $0) }
        let disk = BlockHashTable(size: 2 * Self.k64).updated(size: 2 * Self.k64, with: [0: changed, 1: unchanged])
        let parent = BlockHashTable(size: 2 * Self.k64).updated(size: 2 * Self.k64, with: [0: before, 1: unchanged])
        let differing = CheckedSource<CheckedSourceTests.FixedMap>.differingRanges(between: disk, and: parent)
        #expect(differing == [0..<Self.k64])
        let source = CheckedSource(map, differing: differing, previousEnd: nil)
        _ = try await source.extents(in: 0..<2 * Self.k64)
        // The bitmap missed nothing: the only change is the 4 KiB it marks.
        #expect(source.missed == [], "bytes of a partly dirty block counted as missed: \(source.missed)")
    }
}
