import Foundation
import Synchronization
import TestSupport
import Testing

@testable import QCOW2

/// The writer's way into an object store (``ImageOutput``): each byte is written once, the header last, nothing is
/// finished before ``QCOW2Writer/finalize()``; the bytes put together are the image a file would hold, byte for
/// byte, and the same digest.
@Suite("QCOW2Writer into an output")
struct WriterOutputTests {
    /// Collects what the writer writes, and refuses a byte written twice (an object's parts are written once).
    final class CollectedOutput: ImageOutput {
        let name = "collected"
        struct State {
            var bytes: [UInt8] = []
            var written: [Range<UInt64>] = []
            var finishedSize: UInt64?
            var discarded = false
            var headerWrittenLast = false
        }
        let state = Mutex(State())

        func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(QCOW2Error) {
            try state.withLock { state throws(QCOW2Error) in
                let range = offset..<offset + UInt64(bytes.count)
                guard state.finishedSize == nil, !state.written.contains(where: { $0.overlaps(range) }) else {
                    throw QCOW2Error(.invalidArgument, "\(range) written twice or after finishing")
                }
                state.written.append(range)
                if state.bytes.count < Int(range.upperBound) {
                    state.bytes += [UInt8](repeating: 0, count: Int(range.upperBound) - state.bytes.count)
                }
                state.bytes.replaceSubrange(Int(range.lowerBound)..<Int(range.upperBound), with: bytes)
                state.headerWrittenLast = offset == 0
            }
        }

        func finish(size: UInt64) throws(QCOW2Error) { state.withLock { $0.finishedSize = size } }
        func discard() { state.withLock { $0.discarded = true } }
    }

    /// Writes the same data into `writer`: clusters in two tables, zeros over a backing file, a partial last cluster.
    static func fill(_ writer: QCOW2Writer, size: UInt64) throws {
        var generator = SeededRandom(seed: 7)
        try generator.bytes(3 * 65536).withUnsafeBytes { try writer.writeClusters($0, at: 65536) }
        try writer.zeroClusters(at: 8 * 65536, length: 2 * 65536)
        try generator.bytes(65536).withUnsafeBytes { try writer.writeClusters($0, at: 600 << 20) }
        try writer.settle(below: 512 << 20)
        try generator.bytes(512).withUnsafeBytes { try writer.writeClusters($0, at: size - 512) }
        try writer.finalize()
    }

    @Test("an image written into an output is the file's image byte for byte, with its digest; the header last")
    func sameAsFile() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let size: UInt64 = (1 << 30) + 3 * 65536 + 512
        let path = directory.file("file.qcow2")
        let file = try QCOW2Writer(creating: path, size: size, backingFile: "base.qcow2", digesting: true)
        defer { file.close() }
        try Self.fill(file, size: size)

        let output = CollectedOutput()
        let object = try QCOW2Writer(into: output, size: size, backingFile: "base.qcow2", digesting: true)
        try Self.fill(object, size: size)
        object.close()

        let collected = output.state.withLock { $0 }
        let fileBytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(collected.finishedSize == UInt64(fileBytes.count) && !collected.discarded)
        #expect(collected.headerWrittenLast)
        #expect(collected.bytes == fileBytes)
        #expect(object.digest?.head == file.digest?.head && object.digest?.tail == file.digest?.tail)
    }

    @Test("a writer closed before it is finalized discards its output, and finishes nothing")
    func closedEarlyDiscards() throws {
        let output = CollectedOutput()
        let writer = try QCOW2Writer(into: output, size: 1 << 20)
        try SeededRandom.bytes(65536, seed: 1).withUnsafeBytes { try writer.writeClusters($0, at: 0) }
        writer.close()
        let state = output.state.withLock { $0 }
        #expect(state.discarded && state.finishedSize == nil)
    }
}
