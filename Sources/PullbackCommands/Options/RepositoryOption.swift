import ArgumentParser
import Repository

/// `--repo DIR|s3://BUCKET/PREFIX`: the repository a command works on, `--allow-http` for a bucket behind a
/// plain-HTTP endpoint that is not on this machine, and `--key-file` for an encrypted repository.
struct RepositoryOption: ParsableArguments {
    @Option(
        name: .customLong("repo"),
        help: ArgumentHelp(
            "The repository: a folder (made by `pullback init`) or a bucket, s3://BUCKET/PREFIX.",
            discussion:
                "A bucket's endpoint, keys and region come from the environment as for every S3 tool: AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), AWS_REGION, AWS_CA_BUNDLE."
        ),
        completion: .directory)
    var path: String

    @OptionGroup var plainHTTP: PlainHTTPOption

    @OptionGroup var keyFile: KeyFileOption
}
