import Foundation
import Synchronization

/// One test's private world: a temporary directory (short, so unix socket paths stay under 108 bytes), the servers
/// and processes started in it and the tmpfs mounts made in it. `Fixture.run` tears all of it down when the test
/// body ends, whether it returned, threw or was cancelled.
///
/// Layout: `logs/` holds every command's output, `out/` is where targets go (so a test can check that nothing else
/// was left there), sockets and source images sit at the root. Set `PULLBACK_KEEP_TEST_DIRS=1` to keep the directory
/// (and its logs) after the test; mounts are still undone.
package final class Fixture: CommandRunner {
    /// The fixture's directory, `/tmp/pbct-XXXXXX`.
    package let root: String
    private let state = Mutex(State())

    private struct State {
        var children: [ChildProcess] = []
        var mounts: [String] = []
        var commandCount = 0
    }

    private init() throws {
        root = try TemporaryDirectory.make("pbct")
        try FileManager.default.createDirectory(atPath: root + "/logs", withIntermediateDirectories: false)
        try FileManager.default.createDirectory(atPath: root + "/out", withIntermediateDirectories: false)
    }

    /// Runs `body` with a fresh fixture and always tears it down afterwards.
    package static func run<T>(_ body: (Fixture) async throws -> T) async throws -> T {
        let fixture = try Fixture()
        do {
            let value = try await body(fixture)
            await fixture.tearDown()
            return value
        } catch {
            await fixture.tearDown()
            throw error
        }
    }

    /// A path at the fixture root.
    package func path(_ name: String) -> String { root + "/" + name }

    /// The directory targets are written to.
    package var outDir: String { root + "/out" }

    /// A path in the target directory.
    package func target(_ name: String = "target.raw") -> String { outDir + "/" + name }

    /// Creates a directory at the fixture root and returns its path.
    package func makeDirectory(_ name: String) throws -> String {
        let dir = path(name)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Starts a process that lives until it ends or the fixture is torn down.
    package func spawn(_ command: [String], label: String) throws -> ChildProcess {
        let child = ChildProcess(command, logBase: nextLogBase(label))
        state.withLock { $0.children.append(child) }
        try child.start()
        return child
    }

    /// Runs a command to completion; past `timeout`, or when the test is cancelled, it is ended and this throws.
    package func run(_ command: [String], timeout: Duration = .seconds(120)) async throws -> CommandResult {
        let label = (command.first.map { ($0 as NSString).lastPathComponent } ?? "cmd")
        return try await ChildProcess.run(command, logBase: nextLogBase(label), timeout: timeout)
    }

    /// Mounts a tmpfs at `<root>/<name>` with the given mount options (e.g. `size=1M` or `ro,size=1M`); it is
    /// unmounted at teardown.
    package func mountTmpfs(_ name: String, options: String) async throws -> String {
        let dir = try makeDirectory(name)
        try await runChecked(["mount", "-t", "tmpfs", "-o", options, "tmpfs", dir])
        state.withLock { $0.mounts.append(dir) }
        return dir
    }

    /// Changes the options of a mount made by `mountTmpfs` (e.g. `remount,ro`).
    package func remount(_ dir: String, options: String) async throws {
        try await runChecked(["mount", "-o", options, dir])
    }

    private func nextLogBase(_ label: String) -> String {
        let count = state.withLock {
            $0.commandCount += 1
            return $0.commandCount
        }
        return root + "/logs/" + String(format: "%03d-", count) + label
    }

    /// Runs a command for teardown, which a cancelled test must still run to the end; true when it exited with 0.
    package func runForTeardown(_ command: [String], label: String) async -> Bool {
        await withoutCancellation { [self] in
            let result = try? await ChildProcess.run(command, logBase: nextLogBase(label), timeout: .seconds(30))
            return result?.succeeded ?? false
        }
    }

    /// Ends every process still running (newest first), unmounts, removes the directory.
    private func tearDown() async {
        let (children, mounts) = state.withLock { state in
            defer {
                state.children.removeAll()
                state.mounts.removeAll()
            }
            return (state.children, state.mounts)
        }
        await withoutCancellation {
            for child in children.reversed() {
                await child.terminate()
            }
        }
        for dir in mounts.reversed() {
            // A lazy unmount as the fallback: a mount left behind would make removing the directory fail.
            if await !runForTeardown(["umount", dir], label: "teardown-umount") {
                _ = await runForTeardown(["umount", "-l", dir], label: "teardown-umount-lazy")
            }
        }
        if ProcessInfo.processInfo.environment["PULLBACK_KEEP_TEST_DIRS"] == nil {
            try? FileManager.default.removeItem(atPath: root)
        }
    }
}
