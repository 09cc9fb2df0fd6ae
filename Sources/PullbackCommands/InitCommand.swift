import ArgumentParser
import Repository

/// `pullback init`: a new, empty repository. Backups go only into a repository made this way, so that a mistyped
/// `--repo` is an error rather than a new repository with a new full backup (and a new checkpoint on the domain).
struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create a new, empty repository.",
        discussion: """
            The folder is made 0700 with any missing parents, or must be empty; a folder with files in it is never \
            made a repository, and a repository already there is an error. With --encrypt, every object pullback \
            writes into it but repository.json is sealed (AES-256-GCM) under the key of --key-file.
            """
    )

    @OptionGroup var repository: RepositoryOption

    @OptionGroup var bucketRetries: BucketRetryOption

    @Flag(help: "Encrypt the repository under the key of --key-file (or $PULLBACK_KEY_FILE).")
    var encrypt = false

    func validate() throws {
        if encrypt, repository.keyFile.given == nil {
            throw ValidationError(
                "--encrypt needs a key: give --key-file FILE (32 random bytes, or a passphrase) or set PULLBACK_KEY_FILE"
            )
        }
    }

    func run() throws {
        do {
            let made = try BackupRepository.create(
                root: repository.path, keyFile: encrypt ? repository.keyFile.given : nil)
            print(Terminal.escaped("created the \(made.isEncrypted ? "encrypted " : "")repository \(made.root)"))
        } catch {
            Terminal.printError(error.message)
            throw ExitCode.failure
        }
    }
}
