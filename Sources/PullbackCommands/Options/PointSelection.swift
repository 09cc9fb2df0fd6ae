import ArgumentParser

/// Which backup point a command works on: `--repo DIR DOMAIN [--at ID|latest]`.
struct PointSelection: ParsableArguments {
    @OptionGroup var repository: RepositoryOption

    @Argument(help: "The domain whose point to use.", completion: .repositoryDomain)
    var domain: String

    @Option(help: "The point id, or latest.", completion: .point)
    var at = "latest"
}
