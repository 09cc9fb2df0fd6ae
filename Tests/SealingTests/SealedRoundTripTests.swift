import Foundation
import Sealing
import Storage
import TestSupport
import Testing

/// Plaintext written through the appending and the placed writer reads back identical, whole and at random ranges
/// from several threads, and the sealed object has the size the format gives.
@Suite struct SealedRoundTripTests {
    /// Sizes around frame boundaries, with 4 KiB frames: empty, one byte, a frame less one, a frame, a frame and one,
    /// many frames and a bit.
    static let sizes = [0, 1, 4095, 4096, 4097, 37 * 4096 + 1234]

    @Test(arguments: sizes) func appendedObjectsReadBackIdentical(size: Int) throws {
        let fixture = try SealingFixture()
        let key = try ObjectKey("d/p/disk")
        let content = SeededRandom.bytes(size, seed: UInt64(size) + 1)
        try fixture.append(content, to: key, seed: UInt64(size))
        #expect(try fixture.read(key) == content)
        #expect(try fixture.sealedBytes(key).count == Int(fixture.layout.sealedSize(plaintextSize: UInt64(size))!))
        #expect(try fixture.store.open(key)?.size == UInt64(size))
        try Self.expectRandomReads(fixture, key, content)
    }

    @Test(arguments: sizes) func placedObjectsReadBackIdenticalWithHolesAsZeros(size: Int) throws {
        let fixture = try SealingFixture()
        let key = try ObjectKey("d/p/disk")
        let content = SeededRandom.bytes(size, seed: UInt64(size) + 2)
        // Pieces smaller than, equal to and larger than a frame, some never written.
        for (index, pieceSize) in [1000, 4096, 3 * 4096 + 17].enumerated() {
            let objectKey = try key.sibling("disk\(index)")
            let pieceCount = (size + pieceSize - 1) / pieceSize
            let holes: Set<Int> = pieceCount > 2 ? [0, pieceCount / 2] : []
            let writer = try fixture.store.createPlaced(objectKey, expectedSize: UInt64(size))
            try PlacedPieces.write(content, pieceSize: pieceSize, threads: 4, seed: 9, holes: holes) {
                try writer.write($0, at: $1)
            }
            #expect(try fixture.store.open(objectKey) == nil, "an unfinished object must not be visible")
            try writer.finish(size: UInt64(size))
            let expected = PlacedPieces.expected(content, pieceSize: pieceSize, holes: holes)
            #expect(try fixture.read(objectKey) == expected)
            try Self.expectRandomReads(fixture, objectKey, expected)
        }
    }

    @Test func aPlacedObjectLongerThanWhatWasWrittenReadsZerosPastIt() throws {
        let fixture = try SealingFixture()
        let key = try ObjectKey("image")
        let content = SeededRandom.bytes(5 * 4096 + 100, seed: 3)
        let writer = try fixture.store.createPlaced(key, expectedSize: 0)
        try PlacedPieces.write(content, pieceSize: 4096, threads: 3, seed: 4) { try writer.write($0, at: $1) }
        // Frame 5 is partial, frames 6 to 9 never touched, frame 10 (the final one) short.
        try writer.finish(size: 10 * 4096 + 10)
        #expect(try fixture.read(key) == content + [UInt8](repeating: 0, count: 5 * 4096 - 90))
    }

    @Test func aPlacedWriteAtOrPastTheSizeIsRefusedAndLeavesNothing() throws {
        let fixture = try SealingFixture()
        let key = try ObjectKey("image")
        let writer = try fixture.store.createPlaced(key, expectedSize: 10)
        try ([1, 2] as [UInt8]).withUnsafeBytes { try writer.write($0, at: 8) }
        let error = #expect(throws: StoreError.self) { try writer.finish(size: 9) }
        #expect(error?.code == .io)
        #expect(try fixture.store.open(key) == nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: fixture.folder.root) == [])
    }

    @Test func aStagedObjectOpensUnderItsPublishedName() throws {
        let fixture = try SealingFixture()
        let group = try ObjectKey("web1/20261205T101010Z")
        let written = try fixture.store.beginGroup(group, stagingAt: ObjectKey("web1/20261205T101010Z.partial"))
        let content = SeededRandom.bytes(3 * 4096 + 5, seed: 5)
        try fixture.append(content, to: written.appending("vda.qcow2"))
        try fixture.store.publish(written, as: group, replacing: false)
        let published = try group.appending("vda.qcow2")
        #expect(try fixture.read(published) == content)
        #expect(fixture.store.localPath(of: published) == nil)
        #expect(try fixture.store.list(under: group) == [ObjectEntry(name: "vda.qcow2", kind: .object)])
        #expect(fixture.store.storedBytes(of: published) == fixture.folder.storedBytes(of: published))
    }

    @Test func theMasterKeyIsNeverPrinted() throws {
        let bytes = [UInt8](repeating: 0xAB, count: 32)
        let key = try #require(SealingKey(bytes: bytes))
        var dumped = ""
        dump(key, to: &dumped)
        for text in [key.description, String(reflecting: key), "\(key)", dumped] {
            #expect(!text.lowercased().contains("ab"), "\(text)")
            #expect(!text.contains("171"), "\(text)")
        }
        #expect(SealingKey(bytes: bytes.dropLast()) == nil)
    }

    /// Reads of random ranges, some past the end, from four threads at once, each compared with `content`.
    static func expectRandomReads(_ fixture: SealingFixture, _ key: ObjectKey, _ content: [UInt8]) throws {
        let reader = try #require(try fixture.store.open(key))
        let failure = FirstFailure()
        let mismatches = Mismatches()
        DispatchQueue.concurrentPerform(iterations: 4) { thread in
            var generator = SeededRandom(seed: UInt64(thread) + 100)
            for _ in 0..<200 {
                let offset = Int.random(in: 0...(content.count + 10), using: &generator)
                let length = Int.random(in: 1...(3 * fixture.frameSize), using: &generator)
                var buffer = [UInt8](repeating: 0xEE, count: length)
                do {
                    var done = 0
                    while done < length {
                        let read = try buffer.withUnsafeMutableBytes {
                            try reader.read(
                                into: UnsafeMutableRawBufferPointer(rebasing: $0[done...]), at: UInt64(offset + done))
                        }
                        if read == 0 { break }
                        done += read
                    }
                    let expected =
                        offset < content.count ? Array(content[offset..<min(content.count, offset + length)]) : []
                    if Array(buffer[..<done]) != expected { mismatches.add(offset, length) }
                } catch {
                    failure.record(error)
                }
            }
        }
        if let error = failure.error { throw error }
        #expect(mismatches.all.isEmpty, "reads that differ (offset, length): \(mismatches.all.prefix(5))")
    }
}

/// Ranges read wrong, from several threads.
final class Mismatches: @unchecked Sendable {  // every access holds `lock`
    private let lock = NSLock()
    private var ranges: [(Int, Int)] = []

    func add(_ offset: Int, _ length: Int) { lock.withLock { ranges.append((offset, length)) } }
    var all: [(Int, Int)] { lock.withLock { ranges } }
}
