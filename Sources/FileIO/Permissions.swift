import SystemPackage

// Modes of the files Pullback creates: set exactly, whatever the umask, since a disk image is as sensitive as
// the disk it copies.

extension FilePermissions {
    /// Read and write for the owner only (0600): the mode of every image, copy target and marker Pullback creates.
    package static let ownerOnly: FilePermissions = [.ownerRead, .ownerWrite]
}

extension FileDescriptor {
    /// Creates the new file `path` with exactly `permissions`, whatever the umask. Nothing may have the name yet,
    /// not even a symbolic link (`O_EXCL`, `O_NOFOLLOW`), so a name planted beforehand cannot redirect the write.
    /// When the mode cannot be set, the file is removed again.
    ///
    /// The corresponding C functions are `open` with `O_CREAT | O_EXCL | O_NOFOLLOW`, then `fchmod`.
    package static func createNew(
        path: String, _ mode: AccessMode, permissions: FilePermissions = .ownerOnly
    ) throws(Errno) -> FileDescriptor {
        let descriptor = try open(
            path: path, mode, options: [.create, .exclusiveCreate, .noFollow], permissions: permissions)
        do throws(Errno) {
            // The umask applies only to open, so the mode is set again, exactly.
            try descriptor.setPermissions(permissions)
        } catch {
            descriptor.closeAfterUse()
            try? FilePaths.remove(path)
            throw error
        }
        return descriptor
    }
}

extension FilePaths {
    /// The permission bits (no set-id or sticky bits) of the regular file named `path`, or nil when there is none:
    /// nothing there, a symbolic link, a folder or a device. The name is not followed.
    ///
    /// The corresponding C function is `lstat`.
    package static func permissions(ofRegularFile path: String) -> FilePermissions? {
        guard let stat = try? Stat(path, followTargetSymlink: false), stat.type == .regular else { return nil }
        return FilePermissions(rawValue: stat.permissions.rawValue & 0o777)
    }
}
