import ArgumentParser

/// `--repo DIR`: the repository a command works on.
struct RepositoryOption: ParsableArguments {
    @Option(name: .customLong("repo"), help: "The repository folder (made by `pullback init`).", completion: .directory)
    var path: String
}
