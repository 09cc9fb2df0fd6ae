import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The result of a finished child process.
struct ChildResult: Sendable {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs a tool with posix_spawn and collects its output.
///
/// Not Foundation's Process: it leaves SIGTERM blocked in its children. The child gets an empty signal mask
/// and default handlers. The blocking wait runs on a thread of its own, not on Swift's cooperative pool.
func runChild(_ arguments: [String]) async -> ChildResult {
    await withCheckedContinuation { continuation in
        let thread = Thread { continuation.resume(returning: spawnAndWait(arguments)) }
        thread.name = "child-process"
        thread.start()
    }
}

private func spawnAndWait(_ arguments: [String]) -> ChildResult {
    var outPipe: [Int32] = [-1, -1]
    var errPipe: [Int32] = [-1, -1]
    guard pipe(&outPipe) == 0, pipe(&errPipe) == 0 else {
        return ChildResult(status: -1, stdout: "", stderr: "pipe failed: \(String(cString: strerror(errno)))")
    }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
    posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
    for fd in outPipe + errPipe { posix_spawn_file_actions_addclose(&actions, fd) }

    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var emptyMask = sigset_t()
    sigemptyset(&emptyMask)
    posix_spawnattr_setsigmask(&attributes, &emptyMask)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    for signal in [SIGTERM, SIGINT, SIGPIPE, SIGHUP, SIGCHLD] { sigaddset(&defaults, signal) }
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

    let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    defer { for pointer in argv { free(pointer) } }
    var pid: pid_t = 0
    let spawned = posix_spawnp(&pid, arguments[0], &actions, &attributes, argv, environ)
    close(outPipe[1])
    close(errPipe[1])
    guard spawned == 0 else {
        close(outPipe[0])
        close(errPipe[0])
        return ChildResult(
            status: -1, stdout: "", stderr: "cannot run \(arguments[0]): \(String(cString: strerror(spawned)))")
    }
    // Read both pipes to the end with poll, so a full stderr pipe cannot block the child.
    var output = [Data(), Data()]
    var fds = [
        pollfd(fd: outPipe[0], events: Int16(POLLIN), revents: 0),
        pollfd(fd: errPipe[0], events: Int16(POLLIN), revents: 0),
    ]
    var buffer = [UInt8](repeating: 0, count: 65536)
    while fds.contains(where: { $0.fd >= 0 }) {
        if poll(&fds, 2, -1) < 0 {
            if errno == EINTR { continue }
            break
        }
        for index in 0..<2 where fds[index].fd >= 0 && fds[index].revents != 0 {
            let count = read(fds[index].fd, &buffer, buffer.count)
            if count > 0 {
                output[index].append(contentsOf: buffer[0..<count])
            } else if count == 0 || errno != EINTR {
                close(fds[index].fd)
                fds[index].fd = -1
            }
        }
    }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let exitCode = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    return ChildResult(
        status: exitCode,
        stdout: String(decoding: output[0], as: UTF8.self),
        stderr: String(decoding: output[1], as: UTF8.self))
}
