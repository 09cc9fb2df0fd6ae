import Foundation
import Sealing
import Storage
import TestSupport
import Testing

/// Every way a sealed object can be changed fails with one line naming the object and the frame that fails, and
/// frames before the damage still read (random access stays).
@Suite struct SealedTamperingTests {
    static let key = try! ObjectKey("web1/20261205T101010Z/vda.qcow2")
    /// Ten frames of 4 KiB and 100 bytes in the eleventh (the final one, frame 10).
    static let content = SeededRandom.bytes(10 * 4096 + 100, seed: 11)

    /// A fixture holding ``content`` sealed under ``key``.
    func written() throws -> SealingFixture {
        let fixture = try SealingFixture()
        try fixture.append(Self.content, to: Self.key)
        return fixture
    }

    /// The one-line message for frame `frame` of ``key`` in `fixture`.
    func failure(_ fixture: SealingFixture, frame: Int, key: ObjectKey = key) -> String {
        "\(fixture.path(key)): frame \(frame) fails authentication: it was changed, moved or comes from "
            + "another object; the repository is damaged or the key is wrong"
    }

    /// Expects reading `key` whole to fail with `message`, on one line, caused by the damage of `frame`.
    func expectFailure(_ fixture: SealingFixture, frame: Int, store: SealedStore? = nil, key: ObjectKey = key) {
        let error = #expect(throws: StoreError.self) { try (store ?? fixture.store).read(key, limit: 1 << 20) }
        #expect(error?.message == failure(fixture, frame: frame, key: key))
        #expect(error?.message.contains("\n") == false)
        #expect(
            (error?.cause as? SealedObjectDamage) == SealedObjectDamage(.frameFailsAuthentication(frame: UInt64(frame)))
        )
    }

    /// Reads `count` bytes at `offset` of `key` through the sealed store.
    func readRange(_ fixture: SealingFixture, at offset: Int, count: Int) throws -> [UInt8] {
        let reader = try #require(try fixture.store.open(Self.key))
        var buffer = [UInt8](repeating: 0, count: count)
        let read = try buffer.withUnsafeMutableBytes { try reader.read(into: $0, at: UInt64(offset)) }
        return Array(buffer[..<read])
    }

    @Test func aFlippedBitInAFrameFailsThatFrameOnly() throws {
        let fixture = try written()
        var sealed = try fixture.sealedBytes(Self.key)
        sealed[fixture.frameOffset(3) + 100] ^= 0x01
        try fixture.replaceSealedBytes(Self.key, sealed)
        expectFailure(fixture, frame: 3)
        #expect(try readRange(fixture, at: 0, count: 3 * 4096) == Array(Self.content[..<(3 * 4096)]))
        #expect(try readRange(fixture, at: 4 * 4096, count: 10) == Array(Self.content[(4 * 4096)..<(4 * 4096 + 10)]))
        let error = #expect(throws: StoreError.self) { _ = try readRange(fixture, at: 3 * 4096 + 5, count: 1) }
        #expect(error?.message == failure(fixture, frame: 3))
    }

    @Test func aFlippedBitInAFramesTagFailsThatFrame() throws {
        let fixture = try written()
        var sealed = try fixture.sealedBytes(Self.key)
        sealed[fixture.frameOffset(5) + 4096 + 7] ^= 0x80
        try fixture.replaceSealedBytes(Self.key, sealed)
        expectFailure(fixture, frame: 5)
    }

    @Test(arguments: [40, 63]) func aFlippedBitInTheHeadersSaltFailsAtOpening(offset: Int) throws {
        let fixture = try written()
        var sealed = try fixture.sealedBytes(Self.key)
        sealed[offset] ^= 0x10
        try fixture.replaceSealedBytes(Self.key, sealed)
        // Opening authenticates the final frame first.
        expectFailure(fixture, frame: 10)
    }

    @Test func twoFramesSwappedFail() throws {
        let fixture = try written()
        var sealed = try fixture.sealedBytes(Self.key)
        let frame = 4096 + 16
        let first = Array(sealed[fixture.frameOffset(2)..<fixture.frameOffset(3)])
        sealed.replaceSubrange(
            fixture.frameOffset(2)..<fixture.frameOffset(3),
            with: sealed[fixture.frameOffset(6)..<fixture.frameOffset(6) + frame])
        sealed.replaceSubrange(fixture.frameOffset(6)..<fixture.frameOffset(7), with: first)
        try fixture.replaceSealedBytes(Self.key, sealed)
        expectFailure(fixture, frame: 2)
        #expect(try readRange(fixture, at: 0, count: 2 * 4096) == Array(Self.content[..<(2 * 4096)]))
    }

    @Test func aFrameFromAnotherObjectOfTheSameKeyFails() throws {
        let fixture = try written()
        let other = try ObjectKey("web1/20261205T101010Z/vdb.qcow2")
        try fixture.append(SeededRandom.bytes(Self.content.count, seed: 12), to: other)
        var sealed = try fixture.sealedBytes(Self.key)
        let otherSealed = try fixture.sealedBytes(other)
        sealed.replaceSubrange(
            fixture.frameOffset(4)..<fixture.frameOffset(5),
            with: otherSealed[fixture.frameOffset(4)..<fixture.frameOffset(5)])
        try fixture.replaceSealedBytes(Self.key, sealed)
        expectFailure(fixture, frame: 4)
    }

    @Test func theWholeObjectCopiedToAnotherNameFails() throws {
        let fixture = try written()
        let other = try ObjectKey("web1/20261205T101010Z/vdb.qcow2")
        try fixture.folder.write(fixture.sealedBytes(Self.key), to: other)
        expectFailure(fixture, frame: 10, key: other)
    }

    @Test func aFrameFromAnEarlierWriteOfTheSameNameFails() throws {
        let fixture = try written()
        let earlier = try fixture.sealedBytes(Self.key)
        try fixture.folder.delete(Self.key)
        // The same plaintext written again: a new salt, so another key.
        try fixture.append(Self.content, to: Self.key)
        var sealed = try fixture.sealedBytes(Self.key)
        #expect(sealed != earlier)
        sealed.replaceSubrange(
            fixture.frameOffset(7)..<fixture.frameOffset(8),
            with: earlier[fixture.frameOffset(7)..<fixture.frameOffset(8)])
        try fixture.replaceSealedBytes(Self.key, sealed)
        expectFailure(fixture, frame: 7)
    }

    @Test func anObjectCutAtAFrameBoundaryFails() throws {
        let fixture = try written()
        let sealed = try fixture.sealedBytes(Self.key)
        // Without its final frame, frame 9 (sealed as not final) is now the last.
        try fixture.replaceSealedBytes(Self.key, Array(sealed[..<fixture.frameOffset(10)]))
        expectFailure(fixture, frame: 9)
    }

    @Test func anObjectCutInsideAFrameFails() throws {
        let fixture = try written()
        let sealed = try fixture.sealedBytes(Self.key)
        // 100 bytes into frame 6: a shorter final frame 6 that was never sealed so.
        try fixture.replaceSealedBytes(Self.key, Array(sealed[..<(fixture.frameOffset(6) + 100)]))
        expectFailure(fixture, frame: 6)
    }

    @Test func anObjectCutInsideALastTagIsNoSealedSize() throws {
        let fixture = try written()
        let sealed = try fixture.sealedBytes(Self.key)
        let size = fixture.frameOffset(6) + 9
        try fixture.replaceSealedBytes(Self.key, Array(sealed[..<size]))
        let error = #expect(throws: StoreError.self) { try fixture.read(Self.key) }
        #expect(
            error?.message
                == "\(fixture.path(Self.key)): \(size) bytes is no sealed object's size: its last frame is cut short; "
                + "the repository is damaged")
        #expect((error?.cause as? SealedObjectDamage) == SealedObjectDamage(.impossibleSize(sealedSize: UInt64(size))))
    }

    @Test(arguments: [20, 4096 + 16, 3 * (4096 + 16)]) func bytesAppendedFail(count: Int) throws {
        let fixture = try written()
        let sealed = try fixture.sealedBytes(Self.key)
        try fixture.replaceSealedBytes(Self.key, sealed + SeededRandom.bytes(count, seed: 13))
        // The final frame grows, or is followed by more: either way frame 10 no longer opens as sealed.
        expectFailure(fixture, frame: count == 20 ? 10 : count / (4096 + 16) + 10)
    }

    @Test func aWrongKeyFails() throws {
        let fixture = try written()
        expectFailure(fixture, frame: 10, store: fixture.sealed(fixture.folder, key: .random()))
    }
}

/// Headers and sizes that no writer makes are refused in one line, never a trap.
@Suite struct SealedHeaderTests {
    static let key = try! ObjectKey("d/object")

    func expectRefused(_ sealed: [UInt8], saying reason: String) throws {
        let fixture = try SealingFixture()
        try fixture.folder.write(sealed, to: Self.key)
        let error = #expect(throws: StoreError.self) { try fixture.read(Self.key) }
        #expect(error?.message == "\(fixture.path(Self.key))\(reason)")
        #expect(error?.message.contains("\n") == false)
    }

    func header(frameShift: UInt8, reserved: UInt8 = 0) -> [UInt8] {
        Array("PBSEAL01".utf8) + [frameShift] + [UInt8](repeating: reserved, count: 23)
            + [UInt8](repeating: 7, count: 32)
    }

    @Test func anEmptyOrShortObjectIsNoSealedObject() throws {
        let short = " is not a sealed object: it is shorter than the 64-byte header of a sealed object"
        try expectRefused([], saying: short)
        try expectRefused(Array(header(frameShift: 12).prefix(63)), saying: short)
    }

    @Test func aWrongMagicIsNoSealedObject() throws {
        var bytes = header(frameShift: 12) + [UInt8](repeating: 0, count: 16)
        bytes[0] = UInt8(ascii: "Q")
        try expectRefused(
            bytes, saying: " is not a sealed object: it does not start with the sealed object header PBSEAL01")
    }

    @Test(arguments: [0, 11, 21, 64, 255] as [UInt8]) func aBadFrameSizeIsRefused(shift: UInt8) throws {
        try expectRefused(
            header(frameShift: shift) + [UInt8](repeating: 0, count: 16),
            saying: " is not a sealed object: its header's frame size 2^\(shift) is outside 2^12...2^20")
    }

    @Test func nonZeroReservedBytesAreRefused() throws {
        try expectRefused(
            header(frameShift: 16, reserved: 1) + [UInt8](repeating: 0, count: 16),
            saying: " is not a sealed object: its header's reserved bytes are not zero")
    }

    @Test(arguments: [0, 1, 15, 4096 + 16 + 1, 4096 + 16 + 16]) func aSizeNoPlaintextGivesIsRefused(body: Int) throws {
        let size = 64 + body
        try expectRefused(
            header(frameShift: 12) + [UInt8](repeating: 0, count: body),
            saying: ": \(size) bytes is no sealed object's size: its last frame is cut short; the repository is damaged"
        )
    }

    @Test func sealedAndPlaintextSizesMapOneToOneWithoutTraps() throws {
        for shift in [12, 16, 20] as [UInt8] {
            let layout = try #require(SealedLayout(frameShift: shift))
            let frame = Int(layout.frameSize)
            let starts: [Int] = (0...3).map { $0 * frame }
            for plain: Int in starts.flatMap({ (start: Int) -> [Int] in [start, start + 1, start + frame - 1] }) {
                let sealed = try #require(layout.sealedSize(plaintextSize: UInt64(plain)))
                #expect(layout.plaintextSize(sealedSize: sealed) == UInt64(plain))
            }
            let boundaries = (0...3).map { UInt64(64 + $0 * (frame + 16)) }
            for sealed in boundaries.flatMap({ $0 >= 40 ? ($0 - 40)...($0 + 40) : 0...($0 + 40) }) {
                if let plain = layout.plaintextSize(sealedSize: sealed) {
                    #expect(layout.sealedSize(plaintextSize: plain) == sealed)
                }
            }
            for big: UInt64 in [.max, .max - 1, .max - 64, .max / 2, 1 << 63] {
                if let plain = layout.plaintextSize(sealedSize: big) {
                    #expect(layout.sealedSize(plaintextSize: plain) == big)
                }
                if let sealed = layout.sealedSize(plaintextSize: big) {
                    #expect(layout.plaintextSize(sealedSize: sealed) == big)
                }
                _ = layout.sealedOffset(ofFrame: big)
                _ = layout.frameCount(plaintextSize: big)
            }
        }
        #expect(SealedLayout(frameShift: 16)?.sealedSize(plaintextSize: .max - 64) == nil)
        #expect(SealedLayout(frameShift: 11) == nil)
        #expect(SealedLayout(frameShift: 21) == nil)
    }
}
