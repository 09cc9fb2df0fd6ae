internal import CLinuxIO
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// A process started to outlive its parent: a session of its own (no terminal's Ctrl-C reaches it), standard input
/// from `/dev/null`, standard output and error appended to a log file, and no descriptor of the parent's but those.
/// For a server a command leaves running (the export a live restore's VM reads from).
package enum DetachedProcess {
    /// Starts `executable` with `arguments` (without the program name) and returns its process id; its output goes
    /// to `log`, made 0600 when new. Not waited for: the caller ends it with ``terminate(_:)``, and the kernel reaps
    /// it once this process, its parent, is gone.
    ///
    /// The corresponding C function is `posix_spawn`, with `POSIX_SPAWN_SETSID`.
    package static func spawn(_ executable: String, _ arguments: [String], log: String) throws(Errno) -> Int32 {
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: Int32 = 0
        let result = pullback_spawn_detached(executable, argv, log, &pid)
        guard result == 0 else { throw Errno(rawValue: result) }
        return pid
    }

    /// Whether process `pid` still runs (a zombie whose parent has not reaped it counts as gone).
    package static func isRunning(_ pid: Int32) -> Bool {
        guard pid > 0, kill(pid, 0) == 0 || errno == EPERM else { return false }
        // /proc/PID/stat's third field is the state; Z is a zombie.
        guard let stat = try? FileDescriptor.open("/proc/\(pid)/stat", .readOnly) else { return false }
        defer { try? stat.close() }
        var buffer = [UInt8](repeating: 0, count: 512)
        let count = (try? buffer.withUnsafeMutableBytes { try stat.read(into: $0) }) ?? 0
        let text = String(decoding: buffer.prefix(count), as: UTF8.self)
        guard let close = text.lastIndex(of: ")") else { return false }
        return text[text.index(after: close)...].dropFirst().first != "Z"
    }

    /// Asks process `pid` to end (SIGTERM), waits up to `seconds` for it to be gone, then kills it (SIGKILL).
    package static func terminate(_ pid: Int32, waiting seconds: Int = 5) {
        guard pid > 0, kill(pid, SIGTERM) == 0 else { return }
        for _ in 0..<(seconds * 20) {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid || !isRunning(pid) { return }
            usleep(50_000)
        }
        kill(pid, SIGKILL)
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
    }

    /// Takes the mount at `path` out of the file tree (lazily: it goes once nothing uses it); a FUSE server such as
    /// nbdfuse then exits. The corresponding C function is `umount2` with `MNT_DETACH`.
    package static func unmount(_ path: String) throws(Errno) {
        guard pullback_unmount(path) == 0 else { throw Errno(rawValue: errno) }
    }

    /// The mount points under the folder `folder` (one level down), from `/proc/self/mountinfo`.
    package static func mounts(under folder: String) -> [String] {
        guard let file = try? FileDescriptor.open("/proc/self/mountinfo", .readOnly) else { return [] }
        defer { try? file.close() }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while let count = try? chunk.withUnsafeMutableBytes({ try file.read(into: $0) }), count > 0 {
            bytes += chunk.prefix(count)
        }
        let table = String(decoding: bytes, as: UTF8.self)
        var found: [String] = []
        for line in table.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count > 4 else { continue }
            let point = unescaped(fields[4])
            if point.hasPrefix(folder + "/"), !point.dropFirst(folder.count + 1).contains("/") { found.append(point) }
        }
        return found
    }

    /// A mountinfo path: space, tab, newline and backslash are written as `\ooo`.
    private static func unescaped(_ field: Substring) -> String {
        var bytes: [UInt8] = []
        var utf8 = Array(field.utf8)[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "\\"), utf8.count >= 3,
                let value = UInt8(String(decoding: utf8.prefix(3), as: UTF8.self), radix: 8)
            {
                bytes.append(value)
                utf8 = utf8.dropFirst(3)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
