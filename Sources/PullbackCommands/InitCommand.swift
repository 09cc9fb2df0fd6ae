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
            made a repository, and a repository already there is an error.
            """
    )

    @OptionGroup var repository: RepositoryOption

    @OptionGroup var bucketRetries: BucketRetryOption

    func run() throws {
        do {
            let made = try BackupRepository.create(root: repository.path)
            print(Terminal.escaped("created the repository \(made.root)"))
        } catch {
            Terminal.printError(error.message)
            throw ExitCode.failure
        }
    }
}
