import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// One test's private world: a temporary directory (short, so unix socket paths stay under 108 bytes), the servers
/// and processes started in it and the tmpfs mounts made in it. `Fixture.run` tears all of it down when the test
/// body ends, whether it returned, threw or was cancelled.
///
/// Layout: `logs/` holds every command's output, `out/` is where targets go (so a test can check that nothing else
/// was left there), sockets and source images sit at the root. Set `PULLBACK_KEEP_TEST_DIRS=1` to keep the directory
/// (and its logs) after the test; mounts are still undone.
final class Fixture: @unchecked Sendable {
    let root: String
    private var children: [ChildProcess] = []
    private var mounts: [String] = []
    private var commandCount = 0

    private init() throws {
        var template = Array("/tmp/pbct.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw HarnessError("mkdtemp failed: errno \(errno)")
        }
        root = String(cString: made)
        try FileManager.default.createDirectory(atPath: root + "/logs", withIntermediateDirectories: false)
        try FileManager.default.createDirectory(atPath: root + "/out", withIntermediateDirectories: false)
    }

    /// Runs `body` with a fresh fixture and always tears it down afterwards.
    static func run<T>(_ body: (Fixture) async throws -> T) async throws -> T {
        let fixture = try Fixture()
        do {
            let value = try await body(fixture)
            fixture.tearDown()
            return value
        } catch {
            fixture.tearDown()
            throw error
        }
    }

    /// A path at the fixture root.
    func path(_ name: String) -> String { root + "/" + name }

    /// The directory targets are written to.
    var outDir: String { root + "/out" }

    /// A path in the target directory.
    func target(_ name: String = "target.raw") -> String { outDir + "/" + name }

    /// Creates a directory at the fixture root and returns its path.
    func makeDirectory(_ name: String) throws -> String {
        let dir = path(name)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Starts a process that lives until it ends or the fixture is torn down.
    func spawn(_ command: [String], label: String) throws -> ChildProcess {
        let child = ChildProcess(command, logBase: nextLogBase(label))
        children.append(child)
        try child.start()
        return child
    }

    /// Runs a command to completion.
    func run(_ command: [String], timeout: Duration = .seconds(120)) async throws -> CommandResult {
        let label = (command.first.map { ($0 as NSString).lastPathComponent } ?? "cmd")
        let child = try spawn(command, label: label)
        return try await child.waitForExit(timeout: timeout)
    }

    /// Runs a command that must succeed (a tool preparing or inspecting data, not the program under test).
    @discardableResult
    func runChecked(_ command: [String], timeout: Duration = .seconds(120)) async throws -> CommandResult {
        let result = try await run(command, timeout: timeout)
        guard result.succeeded else {
            throw HarnessError("helper command failed: \(result)")
        }
        return result
    }

    /// Mounts a tmpfs at `<root>/<name>` with the given mount options (e.g. `size=1M` or `ro,size=1M`); it is
    /// unmounted at teardown.
    func mountTmpfs(_ name: String, options: String) async throws -> String {
        let dir = try makeDirectory(name)
        try await runChecked(["mount", "-t", "tmpfs", "-o", options, "tmpfs", dir])
        mounts.append(dir)
        return dir
    }

    /// Changes the options of a mount made by `mountTmpfs` (e.g. `remount,ro`).
    func remount(_ dir: String, options: String) async throws {
        try await runChecked(["mount", "-o", options, dir])
    }

    private func nextLogBase(_ label: String) -> String {
        commandCount += 1
        return root + "/logs/" + String(format: "%03d-", commandCount) + label
    }

    /// Runs a command without `await`, for teardown; true when it exited with 0.
    private func runBlocking(_ command: [String]) -> Bool {
        let child = ChildProcess(command, logBase: nextLogBase("teardown-" + command[0]))
        guard (try? child.start()) != nil else { return false }
        guard child.waitBlocking(seconds: 30) else {
            child.stop()
            return false
        }
        return child.result().succeeded
    }

    /// Stops every process (servers first would not matter: all are independent), unmounts, removes the directory.
    func tearDown() {
        for child in children.reversed() {
            child.stop()
        }
        children.removeAll()
        for dir in mounts.reversed() {
            // A lazy unmount as the fallback: a mount left behind would make removing the directory fail.
            if !runBlocking(["umount", dir]) {
                _ = runBlocking(["umount", "-l", dir])
            }
        }
        mounts.removeAll()
        if ProcessInfo.processInfo.environment["PULLBACK_KEEP_TEST_DIRS"] == nil {
            try? FileManager.default.removeItem(atPath: root)
        }
    }
}
