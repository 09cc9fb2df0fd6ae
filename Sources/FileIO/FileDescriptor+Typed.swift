import SystemPackage

// swift-system's FileDescriptor calls throw untyped errors that are always an `Errno`; these wrappers give the
// layers `throws(Errno)`, so that each maps a failure to its own typed error with the errno as its cause. Every
// call but close retries on EINTR (swift-system's `retryOnInterrupt`, on by default); close is never retried, as
// Linux releases the descriptor even when close is interrupted.

extension FileDescriptor {
    /// Opens `path` with close-on-exec always added: a child process (qemu-img, nbdkit) must not inherit it.
    ///
    /// The corresponding C function is `open`.
    package static func open(
        path: String, _ mode: AccessMode, options: OpenOptions = [], permissions: FilePermissions? = nil
    ) throws(Errno) -> FileDescriptor {
        try errnoOnly { try open(FilePath(path), mode, options: options.union(.closeOnExec), permissions: permissions) }
    }

    /// Writes all of `bytes` at `offset`, however many writes that takes; the file offset does not move.
    ///
    /// The corresponding C function is `pwrite`.
    package func write(_ bytes: some Sequence<UInt8>, at offset: UInt64) throws(Errno) {
        _ = try errnoOnly { try writeAll(toAbsoluteOffset: Int64(offset), bytes) }
    }

    /// Reads into `buffer` from `offset` once, and returns how many bytes were read (0 at the end of the file).
    ///
    /// The corresponding C function is `pread`.
    package func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(Errno) -> Int {
        try errnoOnly { try read(fromAbsoluteOffset: Int64(offset), into: buffer) }
    }

    /// Sets the file's size, cutting it or extending it with a hole.
    ///
    /// The corresponding C function is `ftruncate`.
    package func truncate(to size: UInt64) throws(Errno) {
        try errnoOnly { try resize(to: Int64(size)) }
    }

    /// Moves the file offset to the end and returns it: the size of a regular file or of a block device.
    ///
    /// The corresponding C function is `lseek` with `SEEK_END`.
    package func seekToEnd() throws(Errno) -> Int64 {
        try errnoOnly { try seek(offset: 0, from: .end) }
    }

    /// Closes the descriptor, ignoring a failure: by then the data was flushed (or given up on), and the
    /// descriptor is released whatever close reports.
    ///
    /// The corresponding C function is `close`.
    package func closeAfterUse() {
        try? close()
    }
}

/// Runs a swift-system call, whose untyped throws only ever carry an `Errno`.
private func errnoOnly<T>(_ body: () throws -> T) throws(Errno) -> T {
    do {
        return try body()
    } catch let error as Errno {
        throw error
    } catch {
        preconditionFailure("swift-system threw \(error), which is not an Errno")
    }
}

extension FileDescriptor {
    /// The file's bytes from its start to its end, or nil when it holds more than `limit` (it is then read no further
    /// than one chunk past the limit): for small files read whole, whose size is not trusted before they are read.
    ///
    /// The corresponding C function is `pread`, in chunks of 256 KiB.
    package func readToEnd(limit: Int) throws(Errno) -> [UInt8]? {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 256 << 10)
        while bytes.count <= limit {
            let offset = UInt64(bytes.count)
            let count = try chunk.withUnsafeMutableBytes { buffer in
                Result { () throws(Errno) in try read(into: buffer, at: offset) }
            }.get()
            if count == 0 { return bytes }
            bytes += chunk[..<count]
        }
        return nil
    }
}
