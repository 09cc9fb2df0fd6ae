import ArgumentParser

/// Which backup point a command works on: `--repo DIR DOMAIN [--at ID|latest]`.
struct PointSelection: ParsableArguments {
    @Option(help: "The repository folder.")
    var repo: String

    @Argument(help: "The domain whose point to use.")
    var domain: String

    @Option(help: "The point id, or latest.")
    var at = "latest"
}
