import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Facts about files on disk, read directly with stat(2) and friends.
package enum FileFacts {
    /// Something is at `path` (a dangling link counts).
    package static func exists(_ path: String) -> Bool {
        var info = Glibc.stat()
        return lstat(path, &info) == 0
    }

    /// Apparent size (st_size).
    package static func size(_ path: String) throws -> Int64 {
        Int64(try statInfo(path).st_size)
    }

    /// Bytes really allocated on disk (st_blocks * 512).
    package static func allocated(_ path: String) throws -> Int64 {
        Int64(try statInfo(path).st_blocks) * 512
    }

    /// The inode number, to tell a file replaced by rename from one rewritten in place.
    package static func inode(_ path: String) throws -> UInt64 {
        UInt64(try statInfo(path).st_ino)
    }

    /// Names in a directory, sorted, hidden ones included.
    package static func listing(_ directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
    }

    /// The whole file.
    package static func contents(_ path: String) throws -> Data {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw HarnessError("cannot read \(path)")
        }
        return data
    }

    /// `count` bytes at `offset`, for files too large to read whole.
    package static func bytes(_ path: String, at offset: UInt64, count: Int) throws -> Data {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw HarnessError("cannot open \(path)")
        }
        defer { try? handle.close() }
        try handle.seek(toOffset: offset)
        return try handle.read(upToCount: count) ?? Data()
    }

    /// Writes `data` at `offset` into an existing file without truncating it.
    package static func overwrite(_ path: String, at offset: UInt64, with data: Data) throws {
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw HarnessError("cannot open \(path) for writing")
        }
        defer { try? handle.close() }
        try handle.seek(toOffset: offset)
        try handle.write(contentsOf: data)
    }

    /// Creates (or replaces) a file holding `data`.
    package static func create(_ path: String, with data: Data) throws {
        guard FileManager.default.createFile(atPath: path, contents: data) else {
            throw HarnessError("cannot create \(path) (errno \(errno))")
        }
    }

    /// A unix socket file with nobody listening on it: connecting gives ECONNREFUSED.
    package static func makeDeadSocket(_ path: String) throws {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket() failed: errno \(errno)") }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw HarnessError("socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0 else { throw HarnessError("bind(\(path)) failed: errno \(errno)") }
    }

    /// The permission bits of `path` itself (a link is not followed), or nil when nothing is there.
    package static func mode(_ path: String) -> UInt32? {
        var info = Glibc.stat()
        guard lstat(path, &info) == 0 else { return nil }
        return UInt32(info.st_mode & 0o7777)
    }

    private static func statInfo(_ path: String) throws -> Glibc.stat {
        var info = Glibc.stat()
        guard stat(path, &info) == 0 else {
            throw HarnessError("stat(\(path)) failed: errno \(errno)")
        }
        return info
    }
}
