import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// One child process with its stdout and stderr going to files (pipes could fill up and block it).
///
/// Started with `posix_spawnp` rather than Foundation's `Process`: a test runs on a Swift concurrency thread that
/// blocks most signals, `Process` passes that mask on, and a child with SIGINT and SIGTERM blocked can be neither
/// interrupted nor stopped. Here every child starts with an empty signal mask and default signal actions, in its own
/// process group (so teardown also ends its children), with only stdin, stdout and stderr open.
///
/// Waiting polls with `Task.sleep`, so a test cancelled by `.timeLimit` stops waiting and kills the child instead of
/// hanging the whole run.
final class ChildProcess: @unchecked Sendable {
    let command: [String]
    let stdoutPath: String
    let stderrPath: String
    private let lock = NSLock()
    private var pidValue: pid_t = 0
    private var waitStatus: Int32?

    /// - Parameters:
    ///   - command: program and arguments; the program is looked up in PATH unless it is a path.
    ///   - logBase: path prefix for `<logBase>.stdout` and `<logBase>.stderr`.
    init(_ command: [String], logBase: String) {
        self.command = command
        self.stdoutPath = logBase + ".stdout"
        self.stderrPath = logBase + ".stderr"
    }

    var pid: pid_t { lock.withLock { pidValue } }

    var isRunning: Bool { reap() == nil }

    func start() throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        Self.closeInheritedDescriptors(&actions)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

        let argv: [UnsafeMutablePointer<CChar>?] = command.map { strdup($0) } + [nil]
        defer {
            for argument in argv { free(argument) }
        }
        var newPid: pid_t = 0
        let rc = posix_spawnp(&newPid, command[0], &actions, &attributes, argv, environ)
        guard rc == 0 else {
            throw HarnessError("cannot start `\(command.joined(separator: " "))`: \(String(cString: strerror(rc)))")
        }
        lock.withLock { pidValue = newPid }
    }

    /// Sends SIGINT to the process only (not its group), as the brief's Ctrl-C stand-in.
    func interrupt() {
        if isRunning { kill(pid, SIGINT) }
    }

    /// Waits for the process to end by itself; kills it and throws if it takes longer than `timeout`.
    func waitForExit(timeout: Duration) async throws -> CommandResult {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while isRunning {
            if clock.now >= deadline {
                stop()
                throw HarnessError("`\(command.joined(separator: " "))` did not finish within \(timeout); killed it")
            }
            do {
                try await Task.sleep(for: .milliseconds(20))
            } catch {
                stop()
                throw error
            }
        }
        return result()
    }

    /// The result of a process that has ended.
    func result() -> CommandResult {
        let status = reap() ?? 0
        let signal = status & 0x7f
        return CommandResult(
            command: command,
            exitCode: signal == 0 ? (status >> 8) & 0xff : 128 + signal,
            signal: signal == 0 ? nil : signal,
            stdout: (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
        )
    }

    /// What the process has written to stderr so far.
    func stderrSoFar() -> String {
        (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
    }

    /// Ends the process and its group: SIGTERM, then SIGKILL if it is still there after 3 s (qemu-nbd behind a
    /// throttle drains its queue first). Synchronous so that teardown can call it.
    func stop() {
        guard isRunning else { return }
        kill(-pid, SIGTERM)
        kill(pid, SIGTERM)
        if waitBlocking(seconds: 3) { return }
        kill(-pid, SIGKILL)
        kill(pid, SIGKILL)
        _ = waitBlocking(seconds: 5)
    }

    /// Waits without `await` (for teardown); false if the process is still running after `seconds`.
    func waitBlocking(seconds: Double) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while isRunning {
            if Date() >= end { return false }
            usleep(10_000)
        }
        return true
    }

    private typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

    /// Closes every descriptor above stderr in the child: the test runner's own pipes must not leak into servers
    /// (a leaked pipe keeps `swift test` waiting for EOF). glibc 2.34+ has `posix_spawn_file_actions_addclosefrom_np`,
    /// which Swift does not import, hence dlsym; otherwise each descriptor open now is closed.
    private static func closeInheritedDescriptors(_ actions: inout posix_spawn_file_actions_t) {
        if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") {
            let closeFrom = unsafeBitCast(symbol, to: CloseFrom.self)
            if closeFrom(&actions, 3) == 0 { return }
        }
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for fd in open.compactMap({ Int32($0) }) where fd > 2 {
            posix_spawn_file_actions_addclose(&actions, fd)
        }
    }

    /// The wait status once the process has ended (reaping it the first time), nil while it runs.
    private func reap() -> Int32? {
        lock.withLock {
            if let waitStatus { return waitStatus }
            guard pidValue > 0 else { return 0 }
            var status: Int32 = 0
            let rc = waitpid(pidValue, &status, WNOHANG)
            if rc == pidValue {
                waitStatus = status
                return status
            }
            if rc < 0 && errno != EINTR {
                // Not our child any more (someone else reaped it): treat as ended.
                waitStatus = 0
                return 0
            }
            return nil
        }
    }
}
