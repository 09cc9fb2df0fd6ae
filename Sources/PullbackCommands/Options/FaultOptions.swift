import ArgumentParser
import Engine

/// `--retries N` and `--stall-timeout SECONDS`: how a command reading an NBD export rides out a failing or silent
/// server.
struct FaultOptions: ParsableArguments {
    @Option(
        help:
            "Times a failed read or block status request, or a bucket's request, is tried again (EIO, a dropped connection, a 5xx), 0-100."
    )
    var retries = RetryPolicy.defaultRetries

    @Option(help: "Fail when requests get no reply at all for this many seconds (0: wait forever).")
    var stallTimeout = 120

    func validate() throws {
        try BucketRetryOption.apply(retries)
        guard (0...86_400).contains(stallTimeout) else {
            throw ValidationError("--stall-timeout must be from 0 (no limit) to 86400 seconds")
        }
    }

    var retry: RetryPolicy { RetryPolicy(retries: retries) }
    var stall: Duration? { stallTimeout == 0 ? nil : .seconds(stallTimeout) }
}
