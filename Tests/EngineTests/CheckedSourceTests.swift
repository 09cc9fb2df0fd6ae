import Engine
import Testing

/// The arithmetic of `--check-source`: which ranges the check marks, and what it counts as missed by the bitmap.
@Suite("CheckedSource: ranges a check marks changed")
struct CheckedSourceTests {
    /// A map given in advance; reads are never made here.
    struct FixedMap: BlockSource {
        let extents: [SourceExtent]
        var size: UInt64 { extents.last?.end ?? 0 }
        var maximumReadSize: Int { 1 << 20 }
        var connectionCount: Int { 1 }
        func extents(in range: Range<UInt64>) async throws(CopyError) -> [SourceExtent] {
            extents.compactMap { extent in
                let start = max(extent.offset, range.lowerBound)
                let end = min(extent.end, range.upperBound)
                guard start < end else { return nil }
                return SourceExtent(
                    offset: start, length: end - start, content: extent.content, isDirty: extent.isDirty)
            }
        }
        func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) async throws(CopyError) {}
    }

    static let k64: UInt64 = 65536

    @Test(
        "clean ranges the check found changed become dirty and count as missed; dirty ones and what lies past a grown disk's old end do not"
    )
    func marking() async throws {
        let map = FixedMap(extents: [
            SourceExtent(offset: 0, length: 4 * Self.k64, content: .data, isDirty: false),
            SourceExtent(offset: 4 * Self.k64, length: 2 * Self.k64, content: .data, isDirty: true),
            SourceExtent(offset: 6 * Self.k64, length: 10 * Self.k64, content: .zero, isDirty: false),
        ])
        let differing = [Self.k64..<2 * Self.k64, 3 * Self.k64..<5 * Self.k64, 14 * Self.k64..<16 * Self.k64]
        let source = CheckedSource(map, differing: differing, previousEnd: 15 * Self.k64)
        let extents = try await source.extents(in: 0..<16 * Self.k64)
        #expect(extents.map(\.offset) == [0, 1, 2, 3, 4, 6, 14].map { $0 * Self.k64 })
        #expect(extents.map(\.isDirty) == [false, true, false, true, true, false, true])
        #expect(extents.reduce(0) { $0 + $1.length } == 16 * Self.k64, "the map still covers the disk exactly")
        // Mapped twice (for progress, then to copy): counted once.
        _ = try await source.extents(in: 0..<8 * Self.k64)
        #expect(source.missed == [Self.k64..<2 * Self.k64, 3 * Self.k64..<4 * Self.k64, 14 * Self.k64..<15 * Self.k64])
    }

    @Test("the clean part of a disk: whole dirty blocks read as zeros, a dirty range's ends in shared blocks are read")
    func cleanRanges() async throws {
        let map = FixedMap(extents: [
            SourceExtent(offset: 0, length: Self.k64 + 100, content: .data, isDirty: false),
            SourceExtent(offset: Self.k64 + 100, length: 3 * Self.k64, content: .data, isDirty: true),
            SourceExtent(offset: 4 * Self.k64 + 100, length: 2 * Self.k64 - 100, content: .data, isDirty: true),
        ])
        let source = CleanRangesSource(map)
        let extents = try await source.extents(in: 0..<6 * Self.k64)
        // The two dirty extents are one run: its first block shared with clean data is read, the rest is not.
        #expect(extents.map(\.offset) == [0, Self.k64 + 100, 2 * Self.k64])
        #expect(extents.map(\.content) == [.data, .data, .zero])
        #expect(extents.reduce(0) { $0 + $1.length } == 6 * Self.k64)
        // Blocks 2 and 3 wholly dirty, and 4-5 up to the disk's end.
        #expect(source.dirtyBlocks == [2..<6])
    }

    @Test("blocks whose hashes differ become byte ranges, merged, the last cut at the disk's end")
    func differingRanges() {
        var left = BlockHashTable(size: 5 * Self.k64 + 100)
        var right = BlockHashTable(size: 5 * Self.k64 + 100)
        let one = [UInt8](repeating: 1, count: 10).withUnsafeBytes { BlockHash(of: $0) }
        let two = [UInt8](repeating: 2, count: 10).withUnsafeBytes { BlockHash(of: $0) }
        left = left.updated(size: left.size, with: [0: one, 1: one, 2: one, 5: one])
        right = right.updated(size: right.size, with: [0: one, 1: two, 3: two])
        let ranges = CheckedSource<FixedMap>.differingRanges(between: left, and: right)
        #expect(ranges == [Self.k64..<4 * Self.k64, 5 * Self.k64..<5 * Self.k64 + 100])
    }
}
