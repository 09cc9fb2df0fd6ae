import FileIO
import SystemPackage

/// An open target file and the calls a target makes on it, each turned into a CopyError that names the file.
///
/// The calls block, so targets make them inside ``BlockingWork/run(_:)``, never on Swift's cooperative threads.
/// The descriptor crosses to the thread pool's threads; its owner closes it only after all I/O ended.
struct TargetFile: Sendable {
    let descriptor: FileDescriptor
    let path: String
    /// The file's writes on their way to the disk.
    let writeback = WritebackWindow()

    /// Opens the existing file `path`.
    static func open(_ path: String, _ mode: FileDescriptor.AccessMode) throws(CopyError) -> TargetFile {
        do throws(Errno) {
            return TargetFile(descriptor: try FileDescriptor.open(path: path, mode), path: path)
        } catch {
            throw CopyError(failed: "open", path, error)
        }
    }

    /// Creates `path` for writing, with exactly `permissions` whatever the umask. Nothing may have the name yet,
    /// not even a symbolic link, so a link planted at a temporary name cannot redirect the write elsewhere.
    static func create(_ path: String, permissions: FilePermissions = .ownerOnly) throws(CopyError) -> TargetFile {
        do throws(Errno) {
            let descriptor = try FileDescriptor.createNew(path: path, .writeOnly, permissions: permissions)
            return TargetFile(descriptor: descriptor, path: path)
        } catch {
            throw CopyError(failed: "create", path, error)
        }
    }

    func size() throws(CopyError) -> UInt64 {
        do throws(Errno) { return UInt64(try descriptor.stat().size) } catch {
            throw CopyError(failed: "stat", path, error)
        }
    }

    func truncate(to size: UInt64) throws(CopyError) {
        do throws(Errno) { try descriptor.truncate(to: size) } catch { throw CopyError(failed: "resize", path, error) }
    }

    /// Writes `bytes` (a borrowed buffer or an array) at `offset`.
    func write(_ bytes: some Collection<UInt8>, at offset: UInt64) throws(CopyError) {
        do throws(Errno) { try descriptor.write(bytes, at: offset) } catch {
            throw CopyError(failed: "write", path, error)
        }
        // Errors of the early writeback surface at the final fsync, which is what makes the file durable.
        writeback.wrote(at: offset, length: bytes.count, on: descriptor)
    }

    /// Makes a range read as zeros, freeing its blocks. Where the file system cannot punch holes, zeros are
    /// written instead.
    func punchHole(at offset: UInt64, length: UInt64) throws(CopyError) {
        do throws(Errno) {
            try descriptor.punchHole(at: offset, length: length)
            return
        } catch  where error == .notSupported || error == .noFunction {
            // Written below.
        } catch {
            throw CopyError(failed: "zero a range of", path, error)
        }
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer { chunk.deallocate() }
        chunk.initializeMemory(as: UInt8.self, repeating: 0)
        var done: UInt64 = 0
        while done < length {
            let count = Int(min(UInt64(chunk.count), length - done))
            try write(UnsafeRawBufferPointer(rebasing: chunk[0..<count]), at: offset + done)
            done += UInt64(count)
        }
    }

    func sync() throws(CopyError) {
        do throws(Errno) { try descriptor.sync() } catch { throw CopyError(failed: "flush", path, error) }
    }

    func close() {
        descriptor.closeAfterUse()
    }
}

/// Calls on a target's names: the file itself, its temporary name, its update marker and its folder.
enum TargetPaths {
    /// Flushes the folder holding `path`'s entries, so that a rename or removal in it is durable.
    static func syncFolder(_ folder: String) throws(CopyError) {
        do throws(Errno) { try FilePaths.syncFolder(folder) } catch { throw CopyError(failed: "flush", folder, error) }
    }

    static func rename(_ source: String, to destination: String) throws(CopyError) {
        do throws(Errno) { try FilePaths.rename(source, to: destination) } catch {
            throw CopyError(failed: "rename to", destination, error)
        }
    }

    /// Removes `path` if it exists; what cannot be removed is left for the next run to replace.
    static func remove(_ path: String) {
        try? FilePaths.remove(path)
    }

    static func exists(_ path: String) -> Bool {
        FilePaths.exists(path)
    }
}

extension CopyError {
    /// A failed file call: a full disk and a read-only or forbidden place say what to do about it; the errno is
    /// the cause, so callers can tell them apart too.
    init(failed what: String, _ path: String, _ errno: Errno) {
        switch errno {
        case .noSpace, .diskQuotaExceeded:
            self.init(
                .noSpace, "no space left for \(path) (\(errno)); free space or choose another target", cause: errno)
        case .readOnlyFileSystem, .permissionDenied, .notPermitted:
            self.init(.target, "cannot \(what) \(path): \(errno); choose a writable location", cause: errno)
        default:
            self.init(.target, "cannot \(what) \(path): \(errno)", cause: errno)
        }
    }
}
