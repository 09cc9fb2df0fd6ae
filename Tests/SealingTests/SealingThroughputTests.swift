import Foundation
import Sealing
import Storage
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// CPU seconds per GiB sealed and opened: the layer alone over objects in memory (beside the same bytes moved plain,
/// the cost without encryption), and through the folder store's files. A measurement, not a check: it runs only
/// with `PULLBACK_SEALING_BENCH=1` and prints what it measured. Debug builds measure Swift unoptimized; the numbers
/// worth quoting come from an optimized build of the same loops.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["PULLBACK_SEALING_BENCH"] == "1"), .serialized)
struct SealingThroughputTests {
    static let gibibyte = 1 << 30
    static let pieceSize = 1 << 20
    static let piece = SeededRandom.bytes(pieceSize, seed: 1)
    static let key = SealingKey.random()

    @Test func sealAndOpenOneGibibyteInMemory() throws {
        let layout = SealedLayout(frameShift: SealedLayout.defaultFrameShift)!
        let plainSink = MemoryObjectWriter(capacity: Self.gibibyte)
        Self.report("append plain to memory", try Self.measure { try Self.append(through: plainSink) })
        let sink = MemoryObjectWriter(capacity: Int(layout.sealedSize(plaintextSize: UInt64(Self.gibibyte))!))
        let writer = try SealedObjectWriter(sink, key: Self.key, logicalName: "d/p/disk", location: "memory")
        Self.report("seal, appending, to memory", try Self.measure { try Self.append(through: writer) })
        let placed = try SealedPlacedObjectWriter(
            DiscardingPlacedWriter(), key: Self.key, logicalName: "d/p/disk", location: "memory")
        Self.report("seal, placed from 2 threads", try Self.measure { try Self.place(through: placed) })
        let plainReader = MemoryObjectReader(bytes: plainSink.bytes)
        Self.report("read plain from memory", try Self.measure { try Self.readAll(plainReader, Self.pieceSize) })
        let reader = try SealedObjectReader(
            MemoryObjectReader(bytes: sink.bytes), key: Self.key, logicalName: "d/p/disk", location: "memory")
        Self.report("open, 1 MiB reads", try Self.measure { try Self.readAll(reader, Self.pieceSize) })
        Self.report("open, 4 KiB reads", try Self.measure { try Self.readAll(reader, 4096) })
    }

    @Test func sealAndOpenOneGibibyteInFiles() throws {
        let fixture = try SealingFixture(frameShift: SealedLayout.defaultFrameShift)
        for round in 1...2 {
            let plain = try ObjectKey("plain\(round)")
            let sealed = try ObjectKey("sealed\(round)")
            Self.report(
                "write sealed file (\(round))",
                try Self.measure { try Self.append(through: fixture.store.create(sealed)) })
            Self.report(
                "write plain file (\(round))",
                try Self.measure { try Self.append(through: fixture.folder.create(plain)) })
            Self.report(
                "read sealed file (\(round))",
                try Self.measure { try Self.readAll(fixture.store.open(sealed)!, Self.pieceSize) })
            Self.report(
                "read plain file (\(round))",
                try Self.measure { try Self.readAll(fixture.folder.open(plain)!, Self.pieceSize) })
            try fixture.folder.delete(plain)
            try fixture.folder.delete(sealed)
        }
    }

    static func report(_ what: String, _ seconds: (cpu: Double, wall: Double)) {
        print(
            "sealing throughput: \(what): \(String(format: "%.2f", seconds.cpu)) CPU s/GiB, "
                + "\(String(format: "%.2f", seconds.wall)) s wall")
    }

    static func append(through writer: any ObjectWriter) throws {
        for _ in 0..<(gibibyte / pieceSize) { try piece.withUnsafeBytes { try writer.append($0) } }
        try writer.finish()
    }

    static func place(through writer: any PlacedObjectWriter) throws {
        let failure = FirstFailure()
        DispatchQueue.concurrentPerform(iterations: 2) { thread in
            for index in stride(from: thread, to: gibibyte / pieceSize, by: 2) {
                do {
                    try piece.withUnsafeBytes { try writer.write($0, at: UInt64(index * pieceSize)) }
                } catch {
                    failure.record(error)
                }
            }
        }
        if let error = failure.error { throw error }
        try writer.finish(size: UInt64(gibibyte))
    }

    static func readAll(_ reader: any ObjectReader, _ size: Int) throws {
        var buffer = [UInt8](repeating: 0, count: size)
        var offset: UInt64 = 0
        while true {
            let read = try buffer.withUnsafeMutableBytes { try reader.read(into: $0, at: offset) }
            if read == 0 { break }
            offset += UInt64(read)
        }
        #expect(offset == UInt64(gibibyte))
    }

    /// The process's CPU seconds (user and system) and the wall seconds `body` took.
    static func measure(_ body: () throws -> Void) throws -> (cpu: Double, wall: Double) {
        func cpu() -> Double {
            var usage = rusage()
            getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
            let user = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
            return user + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        }
        let start = (cpu(), Date())
        try body()
        return (cpu() - start.0, Date().timeIntervalSince(start.1))
    }
}

/// An object appended into memory, for measuring the layer without a file system.
final class MemoryObjectWriter: ObjectWriter {
    private(set) var bytes: [UInt8] = []
    var count: UInt64 { UInt64(bytes.count) }

    init(capacity: Int) { bytes.reserveCapacity(capacity) }
    func append(_ bytes: UnsafeRawBufferPointer) throws(StoreError) { self.bytes.append(contentsOf: bytes) }
    func finish() throws(StoreError) {}
    func discard() {}
}

/// A placed object whose bytes go nowhere, for measuring the layer alone.
final class DiscardingPlacedWriter: PlacedObjectWriter {
    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(StoreError) {}
    func finish(size: UInt64) throws(StoreError) {}
    func discard() {}
}

/// An object in memory, read at offsets.
struct MemoryObjectReader: ObjectReader {
    let bytes: [UInt8]
    var size: UInt64 { UInt64(bytes.count) }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(StoreError) -> Int {
        guard offset < size else { return 0 }
        let count = min(buffer.count, bytes.count - Int(offset))
        bytes.withUnsafeBytes { source in
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[Int(offset)..<Int(offset) + count]))
        }
        return count
    }

    func readsOnceInOrder() {}
}
