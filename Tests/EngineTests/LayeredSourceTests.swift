import Engine
import Testing

// A synthetic full's source: what the export's bitmap calls clean is read from the earlier disk, everything else from
// the export, and a read spanning both is split at the boundary.
@Suite struct LayeredSourceTests {
    /// A source whose every byte is `fill`, describing itself by `dirty` (dirty data there, clean data elsewhere).
    final class FilledSource: BlockSource {
        let size: UInt64
        let fill: UInt8
        let dirty: [Range<UInt64>]
        var maximumReadSize: Int { 1 << 20 }
        var connectionCount: Int { 1 }

        init(size: UInt64, fill: UInt8, dirty: [Range<UInt64>] = []) {
            self.size = size
            self.fill = fill
            self.dirty = dirty
        }

        func extents(in range: Range<UInt64>) async throws(CopyError) -> [SourceExtent] {
            var extents: [SourceExtent] = []
            var offset = range.lowerBound
            for piece in dirty where piece.upperBound > offset && piece.lowerBound < range.upperBound {
                let start = max(piece.lowerBound, offset)
                if start > offset {
                    extents.append(SourceExtent(offset: offset, length: start - offset, content: .data, isDirty: false))
                }
                let stop = min(piece.upperBound, range.upperBound)
                extents.append(SourceExtent(offset: start, length: stop - start, content: .data, isDirty: true))
                offset = stop
            }
            if offset < range.upperBound {
                extents.append(
                    SourceExtent(offset: offset, length: range.upperBound - offset, content: .data, isDirty: false))
            }
            return extents
        }

        func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) async throws(CopyError) {
            #expect(offset + UInt64(buffer.count) <= size, "read past the end of a \(size)-byte source")
            buffer.initializeMemory(as: UInt8.self, repeating: fill)
        }
    }

    func read(_ source: some BlockSource, _ range: Range<UInt64>) async throws -> [UInt8] {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: range.count, alignment: 4096)
        defer { buffer.deallocate() }
        try await source.read(into: buffer, at: range.lowerBound)
        return Array(buffer.bindMemory(to: UInt8.self))
    }

    @Test func readsSplitAtEveryBoundaryOfWhatIsClean() async throws {
        let export = FilledSource(size: 1000, fill: 0xee, dirty: [100..<200, 300..<310])
        let layered = LayeredSource(export: export, earlier: FilledSource(size: 1000, fill: 0x11))
        // Nothing mapped yet: everything comes from the export.
        #expect(try await read(layered, 0..<50) == [UInt8](repeating: 0xee, count: 50))
        _ = try await layered.extents(in: 0..<1000)
        let bytes = try await read(layered, 50..<400)
        let expected = (50..<400).map { offset -> UInt8 in
            (100..<200).contains(offset) || (300..<310).contains(offset) ? 0xee : 0x11
        }
        #expect(bytes == expected)
        #expect(layered.bytesReadFromExport == 50 + 100 + 10)
    }

    @Test func pastTheEarlierEndReadsTheExport() async throws {
        // A disk grown from 600 to 1000 bytes: the bitmap calls the new region clean, but the earlier disk ends.
        let export = FilledSource(size: 1000, fill: 0xee, dirty: [100..<200])
        let layered = LayeredSource(export: export, earlier: FilledSource(size: 600, fill: 0x11))
        _ = try await layered.extents(in: 0..<1000)
        let bytes = try await read(layered, 500..<1000)
        #expect(bytes == [UInt8](repeating: 0x11, count: 100) + [UInt8](repeating: 0xee, count: 400))
        #expect(layered.bytesReadFromExport == 400)
    }

    @Test func mappingARangeAgainReplacesWhatWasKnown() async throws {
        let earlier = FilledSource(size: 1000, fill: 0x11)
        let first = LayeredSource(export: FilledSource(size: 1000, fill: 0xee), earlier: earlier)
        _ = try await first.extents(in: 0..<500)
        _ = try await first.extents(in: 500..<1000)
        _ = try await first.extents(in: 0..<500)
        #expect(try await read(first, 0..<1000) == [UInt8](repeating: 0x11, count: 1000))
        #expect(first.bytesReadFromExport == 0)
    }
}
