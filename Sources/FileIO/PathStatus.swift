import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

extension FileDescriptor {
    /// What `path` leads to (symbolic links followed), or nil when nothing does; any other failure (a folder on the
    /// way that may not be searched, say) is thrown with its errno, never taken for "nothing there".
    ///
    /// The corresponding C function is `stat`.
    package static func status(ofTarget path: String) throws(Errno) -> Stat? {
        do {
            return try Stat(path, followTargetSymlink: true)
        } catch .noSuchFileOrDirectory {
            return nil
        }
    }

    /// The absolute path of the process's working folder; fails (`ENOENT`) when that folder was removed, rather than
    /// giving an empty path.
    ///
    /// The corresponding C function is `getcwd`.
    package static func currentFolder() throws(Errno) -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        while true {
            if getcwd(&buffer, buffer.count) != nil {
                return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
            let code = Errno(rawValue: errno)
            guard code == .outOfRange else { throw code }
            buffer = [CChar](repeating: 0, count: buffer.count * 2)
        }
    }
}
