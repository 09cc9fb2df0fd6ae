import ArgumentParser
import Logging

/// `--verbose`, `--quiet` and `--log-json`: how much a command says on stderr, and in which form.
struct LoggingOptions: ParsableArguments {
    @Flag(name: .shortAndLong, help: "Also say what each step does.")
    var verbose = false

    @Flag(name: .shortAndLong, help: "Say only warnings and the error, not the notes (skipped disks, chosen level).")
    var quiet = false

    @Flag(help: "Write what the command says on stderr as one JSON object per event, for log pipelines.")
    var logJSON = false

    func validate() throws {
        if verbose && quiet { throw ValidationError("--verbose and --quiet cannot be used together") }
    }

    /// The least severe level written.
    var level: Logger.Level { verbose ? .debug : quiet ? .warning : .notice }
}
