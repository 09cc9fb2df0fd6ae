#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The process's limit on open descriptors, raised when a deep chain needs more than it allows.
///
/// A chain keeps one descriptor per image open for as long as it is read (two when it reads past the page cache), so
/// that an image cannot be swapped under a reader between reads. The usual soft limit (1,024) is a leftover of
/// `select`, which nothing here uses, while the hard limit is far higher (524,288 under systemd): raising the soft
/// limit to what a chain needs costs nothing, where closing and reopening images would cost opens and identity checks
/// on every read of a deep chain. Chains are at most ``BackingChainOpener/maximumDepth`` images deep.
enum OpenFileLimit {
    /// Descriptors kept free for everything else the process opens (sockets, other chains, the target).
    static let reserve: UInt64 = 256

    /// Makes room for `count` more descriptors: raises the soft limit, up to the hard limit, if it is below what is
    /// open now plus `count` plus ``reserve``. Does nothing when it cannot (the open that runs out then says so).
    static func makeRoom(for count: Int) {
        var limit = rlimit()
        guard getrlimit(Self.resource, &limit) == 0 else { return }
        let wanted = UInt64(openDescriptors()) + UInt64(count) + reserve
        guard UInt64(limit.rlim_cur) < wanted else { return }
        var raised = limit
        raised.rlim_cur = min(limit.rlim_max, rlim_t(wanted * 2))
        _ = setrlimit(Self.resource, &raised)
    }

    /// The current soft limit; for tests and messages.
    static var current: UInt64 {
        var limit = rlimit()
        guard getrlimit(Self.resource, &limit) == 0 else { return 0 }
        return UInt64(limit.rlim_cur)
    }

    #if canImport(Glibc)
        private static let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #else
        private static let resource = RLIMIT_NOFILE
    #endif

    /// How many descriptors the process has open (the entries of /proc/self/fd, with the one reading it and the two
    /// dot entries); 0 where there is no /proc.
    private static func openDescriptors() -> Int {
        guard let folder = opendir("/proc/self/fd") else { return 0 }
        defer { closedir(folder) }
        var count = 0
        while readdir(folder) != nil { count += 1 }
        return count
    }
}
