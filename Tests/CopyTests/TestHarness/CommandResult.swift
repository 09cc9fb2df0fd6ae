/// What a finished command left behind: how it ended and everything it printed.
struct CommandResult: Sendable, CustomStringConvertible {
    let command: [String]
    /// The exit status, or 128 + the signal number when `signal` is set.
    let exitCode: Int32
    /// The signal that killed the process, if it did not exit by itself.
    let signal: Int32?
    let stdout: String
    let stderr: String

    var succeeded: Bool { signal == nil && exitCode == 0 }

    /// Non-empty lines of stderr; a contract error is exactly one of them.
    var stderrLines: [Substring] {
        stderr.split(whereSeparator: \.isNewline).filter { !$0.allSatisfy(\.isWhitespace) }
    }

    var description: String {
        let how = signal.map { "killed by signal \($0)" } ?? "exit \(exitCode)"
        return "`\(command.joined(separator: " "))` -> \(how)\nstdout: \(stdout)\nstderr: \(stderr)"
    }
}
