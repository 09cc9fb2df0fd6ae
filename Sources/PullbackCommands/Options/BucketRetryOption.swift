import ArgumentParser
import Engine
import Repository

/// `--retries N` for the commands that read or write a repository but no NBD export: how many times a bucket's failed
/// request is tried again. The commands that read exports take it through ``FaultOptions`` instead.
struct BucketRetryOption: ParsableArguments {
    @Option(
        help:
            "Times a bucket's failed request is tried again (a 5xx, SlowDown, a dropped or refused connection), 0-100."
    )
    var retries = RetryPolicy.defaultRetries

    /// Applies `--retries` before any repository is opened, as ``RepositoryOption`` applies `--allow-http`.
    func validate() throws {
        try Self.apply(retries)
    }

    /// Checks `retries` is in 0...100 and makes it the bucket retries of the rest of the process.
    static func apply(_ retries: Int) throws {
        guard (0...100).contains(retries) else { throw ValidationError("--retries must be from 0 to 100") }
        RepositoryLocation.retryBucketRequests(retries)
    }
}
