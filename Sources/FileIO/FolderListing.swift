import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// The entries of one open folder, read through its descriptor: the folder listed is the one opened, whatever its
/// name leads to by now. Owns the descriptor (closed with the listing, when the listing is released).
///
/// A class, not a `~Copyable` struct, so that a removal can keep a stack of them in an array.
package final class FolderListing {
    private let stream: OpaquePointer
    /// The listed folder, for calls relative to it. Closed by `closedir` with the stream; never close it otherwise.
    package let folder: FileDescriptor

    /// Lists the folder `descriptor` has open, taking the descriptor over: it is closed when the listing is
    /// released, also when this throws.
    ///
    /// The corresponding C function is `fdopendir`.
    package init(taking descriptor: FileDescriptor) throws(Errno) {
        guard let stream = fdopendir(descriptor.rawValue) else {
            let code = Errno(rawValue: errno)
            descriptor.closeAfterUse()
            throw code
        }
        self.stream = stream
        self.folder = descriptor
    }

    /// Lists the folder `descriptor` has open from its first entry, through a duplicate of it: `descriptor` stays
    /// the caller's. The two share their position in the folder, so the caller must not list through `descriptor`
    /// meanwhile.
    ///
    /// The corresponding C functions are `fcntl` with `F_DUPFD_CLOEXEC`, `fdopendir` and `rewinddir`.
    package convenience init(of descriptor: FileDescriptor) throws(Errno) {
        let duplicate = try retryingOnInterrupt { fcntl(descriptor.rawValue, F_DUPFD_CLOEXEC, 0) }
        try self.init(taking: FileDescriptor(rawValue: duplicate))
        // An earlier listing through another duplicate may have left the shared position at the end.
        rewind()
    }

    deinit {
        closedir(stream)
    }

    /// The next entry, `.` and `..` left out, or nil at the end. Entries removed or added while the folder is listed
    /// may or may not be reported; ``rewind()`` starts a new pass.
    ///
    /// The corresponding C function is `readdir`.
    package func next() throws(Errno) -> FolderEntry? {
        while true {
            errno = 0
            guard let raw = readdir(stream) else {
                let code = errno
                if code == 0 { return nil }
                if code == EINTR { continue }
                throw Errno(rawValue: code)
            }
            // A record is only as long as its name: `raw.pointee` would read a whole `struct dirent`, past the end of
            // the stream's buffer for a short name at its end. Only the fields are read, the name up to its NUL.
            guard let field = raw.pointer(to: \.d_name), let type = raw.pointer(to: \.d_type)?.pointee else {
                preconditionFailure("struct dirent has d_name and d_type")
            }
            let start = UnsafeRawPointer(field).assumingMemoryBound(to: CChar.self)
            let name = EntryName(terminated: Array(UnsafeBufferPointer(start: start, count: strlen(start) + 1)))
            guard !name.isSelfOrParent else { continue }
            let kind: FolderEntry.Kind =
                switch Int(type) {
                case DT_DIR: .folder
                case DT_LNK: .symbolicLink
                case DT_UNKNOWN: .unknown
                default: .other
                }
            return FolderEntry(name: name, kind: kind)
        }
    }

    /// Starts listing again from the first entry.
    ///
    /// The corresponding C function is `rewinddir`.
    package func rewind() {
        rewinddir(stream)
    }

    /// Every name in the folder `descriptor` has open (`.` and `..` left out); `descriptor` stays the caller's.
    package static func names(in descriptor: FileDescriptor) throws(Errno) -> [EntryName] {
        let listing = try FolderListing(of: descriptor)
        var names: [EntryName] = []
        while let entry = try listing.next() { names.append(entry.name) }
        return names
    }
}
