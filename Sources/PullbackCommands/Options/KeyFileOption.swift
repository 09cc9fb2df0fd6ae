import ArgumentParser
import Foundation
import Repository

/// `--key-file FILE` (or `PULLBACK_KEY_FILE`): the key of an encrypted repository, for every command that opens one.
struct KeyFileOption: ParsableArguments {
    @Option(
        name: .customLong("key-file"),
        help: ArgumentHelp(
            "The key of an encrypted repository: a file of 32 random bytes, or of a passphrase (default: $PULLBACK_KEY_FILE).",
            discussion: "The file must be readable by its owner only (chmod 600). A plain repository ignores it.",
            valueName: "file"),
        completion: .file())
    var path: String?

    /// The key file given, by the option or the environment.
    var given: String? {
        if let path { return path }
        guard let variable = ProcessInfo.processInfo.environment["PULLBACK_KEY_FILE"], !variable.isEmpty else {
            return nil
        }
        return variable
    }

    /// Makes the key file the one every repository of the process is opened with.
    func validate() throws {
        RepositoryLocation.useKeyFile(given)
    }
}
