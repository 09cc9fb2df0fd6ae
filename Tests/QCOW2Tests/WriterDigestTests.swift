import Foundation
import TestSupport
import Testing

@testable import QCOW2

/// A digesting writer's hash of its own file, as written, equals coreutils' `sha256sum` of the file's two parts.
@Suite("QCOW2Writer digest")
struct WriterDigestTests {
    /// `sha256sum` of the first `head` bytes of `path` and of the rest, as hex.
    static func coreutilsDigest(_ path: String, head: Int) async throws -> (head: String, tail: String) {
        func sum(_ command: String) async throws -> String {
            let result = try await ChildProcess.run(["sh", "-c", command + " | sha256sum"])
            guard result.succeeded, let hex = result.stdout.split(separator: " ").first else {
                throw HarnessError("\(result)")
            }
            return String(hex)
        }
        return (try await sum("head -c \(head) '\(path)'"), try await sum("tail -c +\(head + 1) '\(path)'"))
    }

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    @Test(
        "data in several tables, a partial last cluster, zero clusters over a backing file: the digest is sha256sum's",
        arguments: [false, true])
    func digestMatchesCoreutils(overlay: Bool) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("image.qcow2")
        let size: UInt64 = (1 << 30) + 3 * 65536 + 512  // the last cluster is partial
        let writer = try QCOW2Writer(
            creating: path, size: size, backingFile: overlay ? "base.qcow2" : nil, digesting: true)
        defer { writer.close() }
        var generator = SystemRandomNumberGenerator()
        func data(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) } }
        try data(3 * 65536).withUnsafeBytes { try writer.writeClusters($0, at: 0) }
        try writer.zeroClusters(at: 5 * 65536, length: 2 * 65536)
        try data(65536).withUnsafeBytes { try writer.writeClusters($0, at: 600 << 20) }  // the second L2 table
        try writer.settle(below: 512 << 20)
        try data(512).withUnsafeBytes { try writer.writeClusters($0, at: size - 512) }
        try writer.finalize()

        let digest = try #require(writer.digest)
        #expect(digest.headLength == 65536)
        let expected = try await Self.coreutilsDigest(path, head: 65536)
        #expect(Self.hex(digest.head) == expected.head)
        #expect(Self.hex(digest.tail) == expected.tail)
    }

    @Test("data clusters written from many threads at once: the digest is still sha256sum's")
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
        let expected = try await Self.coreutilsDigest(path, head: 65536)
        #expect(Self.hex(digest.head) == expected.head)
        #expect(Self.hex(digest.tail) == expected.tail)
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
