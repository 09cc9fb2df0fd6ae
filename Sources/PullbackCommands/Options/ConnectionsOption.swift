import ArgumentParser

/// `--connections N`: NBD connections to open per export when the server allows several (multi-conn).
struct ConnectionsOption: ParsableArguments {
    @Option(name: .customLong("connections"), help: "NBD connections per export when the server allows several (1-16).")
    var count = 4

    func validate() throws {
        guard (1...16).contains(count) else { throw ValidationError("--connections must be from 1 to 16") }
    }
}
