import Foundation
import Subprocess
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A long-running child: a server (qemu-nbd, nbdkit, libvirtd and virtlogd) or a run of the program under test that
/// a test interrupts, suspends or kills. Started through Subprocess (see `Spawning`), with stdout and stderr in
/// `<logBase>.stdout` and `<logBase>.stderr`.
///
/// Its Subprocess task runs on `ProcessThread` and only watches the child: it ends, and Subprocess reaps the child,
/// once the child has exited, or after `terminate()` had Subprocess end it (SIGTERM to its group, SIGKILL after
/// `Spawning.gracePeriod`). Signals go through Subprocess's `Execution`, and only until the child is reaped, so a
/// reused process id never receives one.
package final class ChildProcess: Sendable {
    package let command: [String]
    package let stdoutPath: String
    package let stderrPath: String
    private let state = Mutex(State())
    private let spawned = DispatchSemaphore(value: 0)

    private struct State {
        var pid: pid_t = 0
        /// Set while Subprocess's body runs: from the spawn until the child is about to be reaped.
        var execution: Execution<NoInput, FileDescriptorOutput, FileDescriptorOutput>?
        /// How the child ended, once seen (`waitid` with `WNOWAIT`, which leaves reaping to Subprocess).
        var ending: Ending?
        var startFailure: String?
        /// The Subprocess task has returned: the child is reaped.
        var finished = false
        var task: Task<Void, Never>?
    }

    /// - Parameters:
    ///   - command: program and arguments; the program is looked up in PATH unless it is a path.
    ///   - logBase: path prefix for `<logBase>.stdout` and `<logBase>.stderr`.
    package init(_ command: [String], logBase: String) {
        self.command = command
        self.stdoutPath = logBase + ".stdout"
        self.stderrPath = logBase + ".stderr"
    }

    /// Starts the child and returns once it runs (or throws when it cannot be started).
    package func start() throws {
        let configuration = try Spawning.configuration(command)
        let output = try Spawning.logFile(stdoutPath)
        let error = try Spawning.logFile(stderrPath)
        let task = Task(executorPreference: ProcessThread.shared) { [self] in
            do {
                let result = try await Subprocess.run(configuration, input: .none, output: output, error: error) {
                    execution in
                    state.withLock {
                        $0.execution = execution
                        $0.pid = execution.processIdentifier.value
                    }
                    spawned.signal()
                    defer { state.withLock { $0.execution = nil } }
                    while isRunning {
                        try await Task.sleep(for: .milliseconds(20))
                    }
                }
                state.withLock { $0.ending = $0.ending ?? Ending(result.terminationStatus) }
            } catch {
                let failedToStart = state.withLock {
                    guard $0.pid == 0 else { return false }
                    $0.startFailure = "\(error)"
                    return true
                }
                if failedToStart { spawned.signal() }
            }
            state.withLock { $0.finished = true }
        }
        state.withLock { $0.task = task }
        spawned.wait()
        if let failure = state.withLock({ $0.startFailure }) {
            throw HarnessError("cannot start `\(command.joined(separator: " "))`: \(failure)")
        }
    }

    package var pid: pid_t { state.withLock { $0.pid } }

    /// False once the child has exited (a stopped child still runs).
    package var isRunning: Bool {
        state.withLock { state in
            if state.ending != nil || state.finished { return false }
            guard state.execution != nil else { return true }
            state.ending = Self.peek(state.pid)
            return state.ending == nil
        }
    }

    /// Sends `signal` to the child, or to its whole process group; nothing once it has ended.
    package func send(_ signal: Int32, toProcessGroup: Bool = false) {
        state.withLock { state in
            guard state.ending == nil, let execution = state.execution else { return }
            try? execution.send(signal: Signal(rawValue: signal), toProcessGroup: toProcessGroup)
        }
    }

    /// SIGINT to the process only (not its group), as a user's Ctrl-C in a shell that runs it.
    package func interrupt() { send(SIGINT) }

    /// SIGSTOP: the child stops where it is, holding whatever it holds, until `resume()`.
    package func suspend() { send(SIGSTOP) }

    /// SIGCONT after `suspend()`.
    package func resume() { send(SIGCONT) }

    /// Runs `body` while the child is stopped (`suspend()`), and lets it go on (`resume()`) however `body` ends.
    package func whileSuspended<T>(_ body: () async throws -> T) async rethrows -> T {
        suspend()
        defer { resume() }
        return try await body()
    }

    /// SIGKILL to the process only, as a crash or `kill -9` would end it.
    package func kill() { send(SIGKILL) }

    /// Waits for the child to end by itself; ends it (`stop()`) and throws if that takes longer than `timeout` or
    /// the waiting task is cancelled.
    package func waitForExit(timeout: Duration) async throws -> CommandResult {
        let ended: Bool
        do {
            ended = try await waitUntil(timeout: timeout) { !isRunning }
        } catch {
            stop()
            throw error
        }
        guard ended else {
            stop()
            throw HarnessError("`\(command.joined(separator: " "))` did not finish within \(timeout); killed it")
        }
        return result()
    }

    /// The result of a child that has ended (exit code -1 when how it ended is not known, e.g. after `terminate()`).
    package func result() -> CommandResult {
        let ending = isRunning ? nil : state.withLock { $0.ending }
        guard let ending else {
            return CommandResult(
                command: command, exitCode: -1, signal: nil, stdout: Spawning.contents(stdoutPath),
                stderr: Spawning.contents(stderrPath))
        }
        return ending.result(of: command, stdoutPath: stdoutPath, stderrPath: stderrPath)
    }

    /// What the child has written to stderr so far.
    package func stderrSoFar() -> String { Spawning.contents(stderrPath) }

    /// What the child has written to stdout so far.
    package func stdoutSoFar() -> String { Spawning.contents(stdoutPath) }

    /// Ends the child and its group and waits until the child is gone (so an image lock it held is released):
    /// SIGTERM, then SIGKILL after `Spawning.gracePeriod`. Synchronous, for tests that stop a server between steps;
    /// it waits without the cooperative pool.
    package func stop() {
        guard isRunning else { return }
        send(SIGTERM)
        send(SIGTERM, toProcessGroup: true)
        if !waitBlocking(Spawning.gracePeriod) {
            send(SIGKILL, toProcessGroup: true)
            send(SIGKILL)
            _ = waitBlocking(.seconds(5))
        }
        waitForGroupToEnd()
    }

    /// Has Subprocess end the child as at cancellation (its teardown sequence: SIGTERM to the group, SIGKILL after
    /// `Spawning.gracePeriod`), and waits until Subprocess has reaped it. For teardown.
    package func terminate() async {
        let task = state.withLock { $0.task }
        if isRunning { task?.cancel() }
        await task?.value
        waitForGroupToEnd()
    }

    /// Waits until nothing is left of the child's process group: the child's own children (libvirtd and virtlogd
    /// under their shell) may take longer than it to end after the SIGTERM, and a fixture removes its directory
    /// only once they are gone. SIGKILL to the group after `Spawning.gracePeriod`.
    private func waitForGroupToEnd() {
        let group = pid
        guard group > 0 else { return }
        let clock = ContinuousClock()
        let deadline = clock.now + Spawning.gracePeriod
        var killed = false
        while Glibc.kill(-group, 0) == 0 {
            if !killed, clock.now >= deadline {
                Glibc.kill(-group, SIGKILL)
                killed = true
            } else if clock.now >= deadline + .seconds(5) {
                return
            }
            usleep(10_000)
        }
    }

    /// Waits without `await`; false if the child still runs after `timeout`.
    private func waitBlocking(_ timeout: Duration) -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while isRunning {
            if clock.now >= deadline { return false }
            usleep(10_000)
        }
        return true
    }

    /// How the child ended if it has, without reaping it (`WNOWAIT`): reaping is Subprocess's.
    private static func peek(_ pid: pid_t) -> Ending? {
        var info = siginfo_t()
        guard waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 else { return nil }
        let child = info._sifields._sigchld
        guard child.si_pid == pid else { return nil }
        return Int(info.si_code) == CLD_EXITED ? .exited(child.si_status) : .signaled(child.si_status)
    }
}

extension ChildProcess {
    /// Runs `command` to completion in the calling task, stdout and stderr going to `<logBase>.stdout` and
    /// `<logBase>.stderr` (to a temporary directory, removed afterwards, when `logBase` is nil). When it takes longer
    /// than `timeout`, or the task is cancelled (`.timeLimit`), Subprocess ends it and its group (SIGTERM, then
    /// SIGKILL) and this throws.
    package static func run(
        _ command: [String], logBase: String? = nil, timeout: Duration = .seconds(120)
    ) async throws -> CommandResult {
        let scratch = logBase == nil ? try TemporaryDirectory("pbcmd") : nil
        defer { scratch?.remove() }
        let base = logBase ?? (scratch?.file("command") ?? "")
        let configuration = try Spawning.configuration(command)
        let output = try Spawning.logFile(base + ".stdout")
        let error = try Spawning.logFile(base + ".stderr")
        let status = try await withThrowingTaskGroup(of: TerminationStatus?.self) { group in
            group.addTask {
                try await Subprocess.run(configuration, input: .none, output: output, error: error).terminationStatus
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
        guard let status else {
            throw HarnessError("`\(command.joined(separator: " "))` did not finish within \(timeout); killed it")
        }
        return Ending(status).result(of: command, stdoutPath: base + ".stdout", stderrPath: base + ".stderr")
    }
}
