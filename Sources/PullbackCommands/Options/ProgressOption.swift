import ArgumentParser

/// `--progress` / `--no-progress`: whether a long command draws a progress bar on stderr.
struct ProgressOption: ParsableArguments {
    @Flag(
        name: .customLong("progress"), inversion: .prefixedNo,
        help: "Show a progress bar (default: when stderr is a terminal).")
    var requested: Bool?

    /// Whether to draw: as asked, else only when someone watches stderr.
    var isShown: Bool { requested ?? Terminal.isTerminal(.standardError) }
}
