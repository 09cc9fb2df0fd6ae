import ArgumentParser
import QCOW2

/// `--compress zstd[:LEVEL] | deflate[:LEVEL] | none`: how a qcow2 image's clusters are stored.
struct CompressionOption: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Compress the qcow2 image's clusters: zstd[:LEVEL] (1-19), deflate[:LEVEL] (1-9) or none.",
            valueName: "zstd[:LEVEL]|deflate[:LEVEL]|none"))
    var compress: ClusterCompression?
}

extension ClusterCompression: ExpressibleByArgument {
    public init?(argument: String) {
        self.init(argument)
    }
}
