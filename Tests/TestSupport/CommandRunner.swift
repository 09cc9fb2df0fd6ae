/// Runs a command to completion: a `Fixture`, which keeps each command's output in its `logs/` folder, or a
/// `ScratchRunner`, for tests without one. The helpers that run tools (`Qemu`, `NBDInfo`, `runTool`) take either.
package protocol CommandRunner: Sendable {
    /// Runs `command`; past `timeout`, or when the test is cancelled, it is ended and this throws.
    func run(_ command: [String], timeout: Duration) async throws -> CommandResult
}

extension CommandRunner {
    /// Runs a command that must succeed (a tool preparing or inspecting data, not the program under test).
    @discardableResult
    package func runChecked(_ command: [String], timeout: Duration = .seconds(120)) async throws -> CommandResult {
        let result = try await run(command, timeout: timeout)
        guard result.succeeded else {
            throw HarnessError("helper command failed: \(result)")
        }
        return result
    }
}

/// Runs each command with its output in a temporary folder of its own, removed afterwards (`ChildProcess.run`).
package struct ScratchRunner: CommandRunner {
    package init() {}

    package func run(_ command: [String], timeout: Duration = .seconds(120)) async throws -> CommandResult {
        try await ChildProcess.run(command, timeout: timeout)
    }
}

/// Runs a tool that prepares or judges data (qemu-img, nbdinfo, python3, sha256sum...) and must succeed; returns what
/// it printed on stdout.
@discardableResult
package func runTool(_ command: [String], using runner: any CommandRunner = ScratchRunner()) async throws -> String {
    try await runner.runChecked(command).stdout
}
