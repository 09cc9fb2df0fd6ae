import Foundation
import SystemPackage
import TestSupport
import Testing

@testable import FileIO

/// The file calls and the offload that QCOW2, Engine and Repository share, on real files in a folder of each
/// test's own.
@Suite("FileIO: swift-system calls, raw calls, offload")
struct FileIOTests {
    @Test("readToEnd gives a file whole up to its limit, and nil for one larger, whatever its chunks")
    func readToEndIsBounded() async throws {
        try await TemporaryDirectory.with("fileio") { folder in
            let path = folder + "/state"
            let bytes = (0..<(600 << 10)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            let file = try FileDescriptor.open(
                path: path, .readWrite, options: [.create, .exclusiveCreate], permissions: .ownerOnly)
            defer { file.closeAfterUse() }
            try file.write(bytes, at: 0)
            #expect(try file.readToEnd(limit: bytes.count) == bytes)
            #expect(try file.readToEnd(limit: bytes.count - 1) == nil)
            try file.truncate(to: 0)
            #expect(try file.readToEnd(limit: 0) == [])
        }
    }

    @Test("write at offsets, read back, truncate, stat, close")
    func roundTrip() async throws {
        try await TemporaryDirectory.with("fileio") { folder in
            let path = folder + "/image"
            let file = try FileDescriptor.open(
                path: path, .readWrite, options: [.create, .exclusiveCreate],
                permissions: FilePermissions(rawValue: 0o644)
            )
            defer { file.closeAfterUse() }
            try file.truncate(to: 1 << 20)
            try file.write([1, 2, 3, 4], at: 4096)
            try file.write(Array(repeating: 9, count: 8), at: (1 << 20) - 8)
            try file.sync()
            var buffer = [UInt8](repeating: 0xFF, count: 6)
            let count = try buffer.withUnsafeMutableBytes { raw in try file.read(into: raw, at: 4095) }
            #expect(count == 6)
            #expect(buffer == [0, 1, 2, 3, 4, 0])
            #expect(try file.stat().size == 1 << 20)
            #expect(try file.seekToEnd() == 1 << 20)
            #expect(try file.stat().permissions.rawValue & 0o711 == 0o600, "0644 less the umask, as before")
        }
    }

    @Test("a failed open throws its errno, and exclusive creation refuses an existing file")
    func errnoOfFailures() async throws {
        try await TemporaryDirectory.with("fileio") { folder in
            #expect(throws: Errno.noSuchFileOrDirectory) {
                try FileDescriptor.open(path: folder + "/absent", .readOnly)
            }
            try FileFacts.create(folder + "/present", with: Data())
            #expect(throws: Errno.fileExists) {
                try FileDescriptor.open(
                    path: folder + "/present", .writeOnly, options: [.create, .exclusiveCreate],
                    permissions: FilePermissions(rawValue: 0o644))
            }
            #expect(throws: Errno.fileExists) { try FilePaths.link(folder + "/present", as: folder + "/present") }
        }
    }

    @Test("a punched hole reads as zeros and keeps the size")
    func punchHole() async throws {
        try await TemporaryDirectory.with("fileio") { folder in
            let file = try FileDescriptor.open(
                path: folder + "/raw", .readWrite, options: .create, permissions: FilePermissions(rawValue: 0o644))
            defer { file.closeAfterUse() }
            try file.write(Array(repeating: 0xAB, count: 1 << 16), at: 0)
            file.startWriteback(at: 0, length: 1 << 16)
            do {
                try file.punchHole(at: 4096, length: 8192)
            } catch .notSupported {
                return  // a file system without holes: the engine writes zeros instead
            }
            var buffer = [UInt8](repeating: 0xFF, count: 3 * 4096)
            _ = try buffer.withUnsafeMutableBytes { raw in try file.read(into: raw, at: 4096) }
            #expect(buffer[..<8192].allSatisfy { $0 == 0 })
            #expect(buffer[8192...].allSatisfy { $0 == 0xAB })
            #expect(try file.stat().size == 1 << 16)
        }
    }

    @Test("the lock is exclusive between descriptors and ends with the descriptor that holds it")
    func lock() async throws {
        try await TemporaryDirectory.with("fileio") { folder in
            let path = folder + "/.lock"
            let first = try FileDescriptor.open(
                path: path, .readWrite, options: .create, permissions: FilePermissions(rawValue: 0o644))
            #expect(try first.tryLock())
            let second = try FileDescriptor.open(path: path, .readWrite)
            defer { second.closeAfterUse() }
            #expect(try second.tryLock() == false)
            first.closeAfterUse()
            #expect(try second.tryLock())
        }
    }

    @Test("paths: rename replaces, remove forgets, folders flush")
    func paths() async throws {
        try await TemporaryDirectory.with("fileio") { folder in
            try FileFacts.create(folder + "/a", with: Data())
            try FileFacts.create(folder + "/b", with: Data())
            try FilePaths.rename(folder + "/a", to: folder + "/b")
            #expect(!FilePaths.exists(folder + "/a"))
            #expect(FilePaths.exists(folder + "/b"))
            try FilePaths.syncFolder(folder)
            try FilePaths.remove(folder + "/b")
            #expect(!FilePaths.exists(folder + "/b"))
            #expect(throws: Errno.noSuchFileOrDirectory) { try FilePaths.remove(folder + "/b") }
            #expect(throws: Errno.noSuchFileOrDirectory) { try FilePaths.syncFolder(folder + "/b") }
        }
    }

    @Test("the offload returns the result, and the layer's error unchanged")
    func offload() async throws {
        let value = try await BlockingWork.run { () throws(LayerError) -> Int in 42 }
        #expect(value == 42)
        await #expect(throws: LayerError.failed) {
            try await BlockingWork.run { () throws(LayerError) -> Int in throw .failed }
        }
    }
}

/// A stand-in for a layer's error.
enum LayerError: BlockingWorkFailure, Equatable {
    case failed, cancelled, poolDown

    static func interrupted() -> LayerError { .cancelled }
    static func threadPoolUnavailable(_ error: any Error) -> LayerError { .poolDown }
}
