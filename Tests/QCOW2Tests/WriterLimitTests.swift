import Foundation
import QCOW2
import TestSupport
import Testing

/// Sizes the writer cannot map are refused with an error, never a trap: the size comes from a peer (an NBD export,
/// a manifest), so any UInt64 must be answered.
@Suite("QCOW2Writer size limits")
struct WriterLimitTests {
    @Test(
        "a size needing 2^32 or more L1 entries, or near 2^64, is an invalidArgument error naming the maximum",
        arguments: [UInt64(1) << 61, UInt64(1) << 63, UInt64.max, QCOW2Writer.maximumSize() + 1])
    func hugeSizeRefused(size: UInt64) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("huge.qcow2")
        let error = #expect(throws: QCOW2Error.self) {
            _ = try QCOW2Writer(creating: path, size: size)
        }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains(String(QCOW2Writer.maximumSize())) == true, "\(String(describing: error))")
        #expect(!FileManager.default.fileExists(atPath: path), "a refused image left a file")
    }

    @Test("the maximum is 2 PiB with 64 KiB clusters and 2^61 bytes with 2 MiB clusters; the maximum itself opens")
    func maximum() throws {
        #expect(QCOW2Writer.maximumSize() == 1 << 51)
        #expect(QCOW2Writer.maximumSize(clusterBits: 21) == 1 << 61)
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let writer = try QCOW2Writer(creating: directory.file("max.qcow2"), size: QCOW2Writer.maximumSize())
        writer.close()
    }

    @Test("a write range whose end overflows UInt64 is refused, not a trap")
    func overflowingRange() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let writer = try QCOW2Writer(creating: directory.file("r.qcow2"), size: 1 << 20, backingFile: "base.qcow2")
        defer { writer.close() }
        #expect(throws: QCOW2Error.self) {
            try writer.zeroClusters(at: 65536, length: UInt64.max - 65535)
        }
        let bytes = [UInt8](repeating: 1, count: 65536)
        #expect(throws: QCOW2Error.self) {
            try bytes.withUnsafeBytes { try writer.writeClusters($0, at: UInt64.max & ~0xFFFF) }
        }
    }
}
