import Foundation
import Sealing
import Storage
import TestSupport
import Testing

/// Nothing of the plaintext shows in the sealed bytes.
@Suite struct SealedConfidentialityTests {
    static let marker = Array("PULLBACK-SEALING-MARKER-7f3a9c".utf8)

    @Test func aMarkerWrittenManyTimesIsNotInTheSealedFiles() throws {
        let fixture = try SealingFixture(frameShift: 16)
        let content = [UInt8]((0..<5000).map { _ in Self.marker }.joined())
        try fixture.append(content, to: ObjectKey("appended"))
        let placed = try fixture.store.createPlaced(ObjectKey("placed"), expectedSize: UInt64(content.count))
        try PlacedPieces.write(content, pieceSize: 10_000, threads: 2, seed: 1) { try placed.write($0, at: $1) }
        try placed.finish(size: UInt64(content.count))
        for name in ["appended", "placed"] {
            let key = try ObjectKey(name)
            #expect(try fixture.read(key) == content)
            let sealed = try fixture.sealedBytes(key)
            #expect(sealed.count > content.count)
            #expect(Self.count(of: Self.marker, in: content) == 5000)
            #expect(Self.count(of: Self.marker, in: sealed) == 0)
            #expect(Self.count(of: Array(Self.marker.prefix(8)), in: sealed) == 0)
        }
    }

    /// How many times `needle` occurs in `haystack`.
    static func count(of needle: [UInt8], in haystack: [UInt8]) -> Int {
        guard haystack.count >= needle.count else { return 0 }
        var found = 0
        var index = 0
        while index <= haystack.count - needle.count {
            if haystack[index] == needle[0], haystack[index..<index + needle.count].elementsEqual(needle) {
                found += 1
                index += needle.count
            } else {
                index += 1
            }
        }
        return found
    }
}
