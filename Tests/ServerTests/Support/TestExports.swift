import Foundation
import QCOW2
import TestSupport
import Testing

@testable import Server

/// Raw images in a temporary folder, served as exports: the byte at each offset is `pattern(offset)`.
final class TestExports {
    let folder: TemporaryDirectory

    init() throws {
        folder = try TemporaryDirectory("pbserver")
    }

    /// The byte every image holds at `offset`.
    static func pattern(_ offset: Int) -> UInt8 { UInt8(truncatingIfNeeded: offset % 251) }

    /// An image of `size` bytes of the pattern, exported as `name`.
    func written(_ name: String, size: Int, bitmap: String? = nil) throws -> ServedExport {
        let path = folder.file(name + ".raw")
        try Data((0..<size).map(Self.pattern)).write(to: URL(fileURLWithPath: path))
        return ServedExport(name: name, chain: try QCOW2Chain(path: path, format: .raw), bitmap: bitmap)
    }

    /// A sparse image of `size` bytes that reads as zeros, exported as `name`: large, and nothing on disk.
    func sparse(_ name: String, size: UInt64) throws -> ServedExport {
        let path = folder.file(name + ".raw")
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: size)
        try handle.close()
        return ServedExport(name: name, chain: try QCOW2Chain(path: path, format: .raw))
    }
}
