/// coreutils as an oracle independent of Pullback's code.
package enum Coreutils {
    /// `sha256sum` of what the shell command `command` prints (e.g. `cat FILE`, `head -c 512 FILE`), as hex.
    package static func sha256sum(of command: String) async throws -> String {
        let result = try await ChildProcess.run(["sh", "-c", command + " | sha256sum"])
        guard result.succeeded, let hex = result.stdout.split(separator: " ").first else {
            throw HarnessError("\(result)")
        }
        return String(hex)
    }
}
