import Crypto
import Foundation
import TestSupport
import Testing

@testable import QCOW2

/// A digesting writer's hash of its own file, as written, equals Python's hashlib's of the file's header cluster and of
/// the rest's 64 KiB pieces (``PiecewiseDigest``); a plain split digest equals coreutils' `sha256sum` of the two parts.
@Suite("QCOW2Writer digest")
struct WriterDigestTests {
    /// `sha256sum` of the first `head` bytes of `path` and of the rest, as hex.
    static func coreutilsDigest(_ path: String, head: Int) async throws -> (head: String, tail: String) {
        (
            try await Coreutils.sha256sum(of: "head -c \(head) '\(path)'"),
            try await Coreutils.sha256sum(of: "tail -c +\(head + 1) '\(path)'")
        )
    }

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    @Test(
        "data in several tables, a partial last cluster, zero clusters over a backing file: the digest is the file's",
        arguments: [false, true])
    func digestMatchesCoreutils(overlay: Bool) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("image.qcow2")
        let size: UInt64 = (1 << 30) + 3 * 65536 + 512  // the last cluster is partial
        let writer = try QCOW2Writer(
            creating: path, size: size, backingFile: overlay ? "base.qcow2" : nil, digesting: true)
        defer { writer.close() }
        var generator = SeededRandom(seed: overlay ? 2 : 1)
        func data(_ count: Int) -> [UInt8] { generator.bytes(count) }
        try data(3 * 65536).withUnsafeBytes { try writer.writeClusters($0, at: 0) }
        try writer.zeroClusters(at: 5 * 65536, length: 2 * 65536)
        try data(65536).withUnsafeBytes { try writer.writeClusters($0, at: 600 << 20) }  // the second L2 table
        try writer.settle(below: 512 << 20)
        try data(512).withUnsafeBytes { try writer.writeClusters($0, at: size - 512) }
        try writer.finalize()

        let digest = try #require(writer.digest)
        #expect(digest.headLength == 65536 && digest.piecewise)
        #expect(Self.recorded(digest) == (try await PiecewiseDigest.of(path)))
    }

    /// The digest as a manifest records it.
    static func recorded(_ digest: SplitDigest) -> String {
        "sha256-pieces:\(digest.headLength):\(hex(digest.head)):\(hex(digest.tail))"
    }

    @Test(
        "pieces whose hashes the caller gives are not hashed again: right ones give the file's digest, wrong ones show")
    func givenPieceHashes() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let data = SeededRandom.bytes(4 * 65536, seed: 3)
        func hashes(of bytes: [UInt8]) -> [UInt8] {
            stride(from: 0, to: bytes.count, by: 65536).flatMap { Array(SHA256.hash(data: bytes[$0..<$0 + 65536])) }
        }
        var digests: [String] = []
        for (name, given) in [("right", hashes(of: data)), ("wrong", hashes(of: data.reversed()))] {
            let path = directory.file("\(name).qcow2")
            let writer = try QCOW2Writer(creating: path, size: 1 << 20, digesting: true)
            defer { writer.close() }
            try data.withUnsafeBytes { bytes in
                try given.withUnsafeBytes { pieces in
                    let host = try writer.placeClusters(bytes, at: 65536, pieceHashes: pieces)
                    try writer.writePlaced(bytes, at: host)
                }
            }
            try writer.finalize()
            digests.append(Self.recorded(try #require(writer.digest)))
            if name == "right" { #expect(digests[0] == (try await PiecewiseDigest.of(path))) }
        }
        #expect(digests[0] != digests[1], "the given hashes are what the digest is made of")
    }

    @Test("a split digest without pieces is coreutils' sha256sum of the two parts")
    func plainSplit() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("plain.bin")
        let digest = AppendDigest(headLength: 65536)
        let header = [UInt8](repeating: 7, count: 300)
        let body = [UInt8](repeating: 9, count: 3 * 65536 + 11)
        digest.wrote(header, at: 0)
        digest.wrote(body, at: 2 * 65536)
        var file = header + [UInt8](repeating: 0, count: 2 * 65536 - header.count) + body
        file += [UInt8](repeating: 0, count: 5)
        try Data(file).write(to: URL(fileURLWithPath: path))
        let split = try #require(digest.finish(fileSize: UInt64(file.count)))
        #expect(!split.piecewise)
        let expected = try await Self.coreutilsDigest(path, head: 65536)
        #expect(Self.hex(split.head) == expected.head && Self.hex(split.tail) == expected.tail)
    }

    @Test("data clusters written from many threads at once: the digest is still that of the file")
    func concurrentWrites() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("image.qcow2")
        let writer = try QCOW2Writer(creating: path, size: 64 << 20, digesting: true)
        defer { writer.close() }
        DispatchQueue.concurrentPerform(iterations: 256) { index in
            let bytes = [UInt8](repeating: UInt8(truncatingIfNeeded: index * 7 + 1), count: 65536)
            let offset = UInt64((index * 97) % 256) * 65536
            // Placing and writing as a target does on its two threads, here on many.
            bytes.withUnsafeBytes { buffer in
                guard let host = try? writer.placeClusters(buffer, at: offset) else { return }
                try? writer.writePlaced(buffer, at: host)
            }
        }
        try writer.finalize()
        let digest = try #require(writer.digest)
        #expect(Self.recorded(digest) == (try await PiecewiseDigest.of(path)))
        // And qemu reads every cluster as written.
        let contents = try await Qemu.rawContents(of: path)
        for index in 0..<256 {
            let offset = (index * 97) % 256 * 65536
            #expect(contents[offset..<offset + 65536].allSatisfy { $0 == UInt8(truncatingIfNeeded: index * 7 + 1) })
        }
    }

    @Test("no digest unless asked for; writes out of file order give none rather than a wrong one")
    func noDigest() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let writer = try QCOW2Writer(creating: directory.file("plain.qcow2"), size: 1 << 20)
        defer { writer.close() }
        try [UInt8](repeating: 1, count: 65536).withUnsafeBytes { try writer.writeClusters($0, at: 0) }
        try writer.finalize()
        #expect(writer.digest == nil)

        let digest = AppendDigest(headLength: 65536)
        digest.wrote([UInt8](repeating: 2, count: 65536), at: 2 * 65536)
        digest.wrote([UInt8](repeating: 3, count: 65536), at: 65536)
        digest.wrote([UInt8](repeating: 4, count: 104), at: 0)
        #expect(digest.finish(fileSize: 3 * 65536) == nil)
    }
}
