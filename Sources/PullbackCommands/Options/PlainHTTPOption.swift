import ArgumentParser
import Repository

/// `--allow-http`: a bucket behind a plain-HTTP endpoint that is not on this machine, for every command that takes a
/// bucket location.
struct PlainHTTPOption: ParsableArguments {
    @Flag(
        name: .customLong("allow-http"),
        help:
            "Allow a plain http:// S3 endpoint that is not on this machine (credentials and data then travel unencrypted)."
    )
    var allowHTTP = false

    /// Applies `--allow-http` before any repository is opened.
    func validate() throws {
        RepositoryLocation.allowPlainHTTP(allowHTTP)
    }
}
