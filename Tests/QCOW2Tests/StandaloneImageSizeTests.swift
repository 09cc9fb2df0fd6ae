import Foundation
import QCOW2
import TestSupport
import Testing

/// ``StandaloneImageSize`` says the size of the file the writer makes, before it is written: `prune --dry-run`
/// reports what a merge into a full point takes from it.
@Suite("StandaloneImageSize")
struct StandaloneImageSizeTests {
    /// Guest ranges (whole clusters, ascending, some sharing an L2 table, some neighbours) and a disk size.
    static let layouts: [(size: UInt64, ranges: [Range<UInt64>])] = [
        (1 << 30, []),
        (1 << 30, [0..<65536]),
        (1 << 30, [0..<(2 << 20), (2 << 20)..<(3 << 20), (600 << 20)..<(601 << 20)]),
        // Ranges on both sides of an L2 table's end (512 MiB with 64 KiB clusters) and one past the next.
        (3 << 30, [((512 << 20) - 65536)..<((512 << 20) + 65536), (2 << 30)..<((2 << 30) + 131072)]),
        // Enough data clusters that the refcounts take a second block.
        (1 << 40, (0..<40).map { UInt64($0) << 30..<(UInt64($0) << 30) + (1 << 20) }),
    ]

    @Test(
        "the estimate is the finished file's size and its allocated blocks but the file system's own",
        arguments: 0..<layouts.count
    )
    func matchesWriter(layout index: Int) throws {
        let (size, ranges) = Self.layouts[index]
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("merged.qcow2")
        let writer = try QCOW2Writer(creating: path, size: size)
        defer { writer.close() }
        var estimate = StandaloneImageSize(size: size)
        let bytes = [UInt8](repeating: 0x5a, count: 1 << 20)
        for range in ranges {
            estimate.addData(range)
            var offset = range.lowerBound
            while offset < range.upperBound {
                let count = Int(min(UInt64(bytes.count), range.upperBound - offset))
                try bytes.withUnsafeBytes {
                    try writer.writeClusters(UnsafeRawBufferPointer(rebasing: $0[..<count]), at: offset)
                }
                offset += UInt64(count)
            }
        }
        try writer.finalize()
        #expect(UInt64(try FileFacts.size(path)) == estimate.fileBytes, "ranges \(ranges)")
        // The temporary folder is on a file system of 4 KiB blocks here (ext4, tmpfs), which may add a few blocks
        // of its own for a file of many extents.
        let allocated = try FileFacts.allocated(path)
        let estimated = Int64(estimate.allocatedBytes())
        #expect(allocated >= estimated && allocated - estimated <= 16384, "\(allocated) allocated, ranges \(ranges)")
    }

    @Test("a range not on cluster boundaries counts every cluster it touches once")
    func unaligned() {
        var split = StandaloneImageSize(size: 1 << 30)
        split.addData(100..<70000)
        split.addData(70000..<70001)
        var whole = StandaloneImageSize(size: 1 << 30)
        whole.addData(0..<131072)
        #expect(split.fileBytes == whole.fileBytes)
    }
}
