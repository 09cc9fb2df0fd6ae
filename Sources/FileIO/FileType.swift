import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

// Opening a file that is to be read as a disk image. A FIFO blocks in open() until a writer comes (and a process
// blocked there ignores SIGTERM), a device reads forever or reads the host's disk, and a symbolic link can lead
// anywhere: what may be read is decided here, on the open descriptor, before a byte is read.

/// Why a file was not opened for reading as an image.
package enum ImageFileRefusal: Error, Sendable {
    /// A system call failed.
    case failed(call: String, Errno)
    /// The path's last component is a symbolic link, and links were not to be followed.
    case symbolicLink
    /// The file is of a kind that is never read as an image (a FIFO, a socket, a folder), or a device when devices
    /// were not allowed.
    case refused(FileType)

    /// One line naming `path` and what is wrong with it.
    package func message(for path: String) -> String {
        switch self {
        case .failed(let call, let errno): "cannot \(call) \(path): \(errno)"
        case .symbolicLink: "\(path) is a symbolic link, which is not followed here; the file itself is needed"
        case .refused(let type) where type == .blockSpecial || type == .characterSpecial:
            "\(path) is \(type.spokenName), not an image file; devices are read only when allowed"
        case .refused(let type): "\(path) is \(type.spokenName), not an image file"
        }
    }

    /// The system call's error, if a call failed.
    package var errno: Errno? {
        if case .failed(_, let errno) = self { return errno }
        return nil
    }
}

extension FileType {
    /// The kind of file in words, with its article: "a FIFO", "a block device".
    package var spokenName: String {
        switch self {
        case .regular: "a regular file"
        case .directory: "a folder"
        case .fifo: "a FIFO"
        case .socket: "a socket"
        case .blockSpecial: "a block device"
        case .characterSpecial: "a character device"
        case .symbolicLink: "a symbolic link"
        default: "a special file"
        }
    }
}

extension FileDescriptor {
    /// Opens `path` to be read (or, for a repository's own files, written) as a file of Pullback's, and returns it
    /// with its status.
    ///
    /// The file is opened in `mode` with `options` (`.create` with `permissions` for a new file), with O_NONBLOCK so
    /// that a FIFO cannot block the open, and with O_NOFOLLOW unless `followingSymlinks`. Its type is then checked on
    /// the descriptor, before a byte is read or written: a regular file is accepted, a block or character device only
    /// if `allowingDevices` (and O_NONBLOCK is then cleared, so that reads wait as usual), and anything else (a FIFO,
    /// a socket, a folder) never.
    ///
    /// The corresponding C functions are `open`, `fstat` and `fcntl` with `F_SETFL`.
    package static func openChecked(
        path: String, _ mode: AccessMode = .readOnly, options: OpenOptions = [], permissions: FilePermissions? = nil,
        followingSymlinks: Bool, allowingDevices: Bool
    ) throws(ImageFileRefusal) -> (descriptor: FileDescriptor, status: Stat) {
        var options = options.union(.nonBlocking)
        if !followingSymlinks { options.insert(.noFollow) }
        let descriptor: FileDescriptor
        do throws(Errno) {
            descriptor = try open(path: path, mode, options: options, permissions: permissions)
        } catch {
            // O_NOFOLLOW on a link fails with ELOOP; so does a loop of links, which is not followed either.
            if error == .tooManySymbolicLinkLevels, !followingSymlinks { throw .symbolicLink }
            throw .failed(call: "open", error)
        }
        do throws(ImageFileRefusal) {
            let status: Stat
            do throws(Errno) { status = try descriptor.stat() } catch { throw .failed(call: "stat", error) }
            switch status.type {
            case .regular:
                break
            case .blockSpecial where allowingDevices, .characterSpecial where allowingDevices:
                do throws(Errno) { try descriptor.clearNonBlocking() } catch { throw .failed(call: "set up", error) }
            default:
                throw .refused(status.type)
            }
            return (descriptor, status)
        } catch {
            descriptor.closeAfterUse()
            throw error
        }
    }

    /// Makes reads and writes on the descriptor wait again, after an open with O_NONBLOCK.
    ///
    /// The corresponding C function is `fcntl` with `F_GETFL` and `F_SETFL`.
    package func clearNonBlocking() throws(Errno) {
        let flags = try retryingOnInterrupt { fcntl(rawValue, F_GETFL) }
        _ = try retryingOnInterrupt { fcntl(rawValue, F_SETFL, flags & ~O_NONBLOCK) }
    }
}
