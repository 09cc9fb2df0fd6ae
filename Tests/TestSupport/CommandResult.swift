/// What a finished command left behind: how it ended and everything it printed.
package struct CommandResult: Sendable, CustomStringConvertible {
    package let command: [String]
    /// The exit status, or 128 + the signal number when `signal` is set.
    package let exitCode: Int32
    /// The signal that killed the process, if it did not exit by itself.
    package let signal: Int32?
    package let stdout: String
    package let stderr: String

    package init(command: [String], exitCode: Int32, signal: Int32?, stdout: String, stderr: String) {
        self.command = command
        self.exitCode = exitCode
        self.signal = signal
        self.stdout = stdout
        self.stderr = stderr
    }

    package var succeeded: Bool { signal == nil && exitCode == 0 }

    /// Non-empty lines of stderr; a contract error is exactly one of them.
    package var stderrLines: [Substring] {
        stderr.split(whereSeparator: \.isNewline).filter { !$0.allSatisfy(\.isWhitespace) }
    }

    package var description: String {
        let how = signal.map { "killed by signal \($0)" } ?? "exit \(exitCode)"
        return "`\(command.joined(separator: " "))` -> \(how)\nstdout: \(stdout)\nstderr: \(stderr)"
    }
}
