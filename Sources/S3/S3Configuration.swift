import Foundation

/// Everything an `S3Client` needs: where the store is, the region and keys requests are signed for, TLS trust, and
/// how hard to try. Its description never shows a secret.
public struct S3Configuration: Sendable, CustomStringConvertible {
    /// Where requests go.
    public var endpoint: S3Endpoint
    /// The region requests are signed for (`us-east-1` when nothing says otherwise).
    public var region: String
    /// The keys requests are signed with.
    public var credentials: S3Credentials
    /// `AWS_CA_BUNDLE`: a PEM file of the certificates to trust instead of the system's.
    public var caBundlePath: String?
    /// How many times a call is tried again after a failure worth retrying (5xx, 429, timeouts, lost connections).
    public var retries: Int
    /// How long one attempt may take, from connecting to the last byte of the answer.
    public var requestTimeout: Duration
    /// How long one attempt may spend connecting (AsyncHTTPClient tries again within it while a connection is
    /// refused).
    public var connectTimeout: Duration = .seconds(10)

    /// A configuration from its parts; `retries` 5 and 60 s per attempt unless given.
    public init(
        endpoint: S3Endpoint, region: String, credentials: S3Credentials, caBundlePath: String? = nil,
        retries: Int = 5, requestTimeout: Duration = .seconds(60)
    ) {
        self.endpoint = endpoint
        self.region = region
        self.credentials = credentials
        self.caBundlePath = caBundlePath
        self.retries = retries
        self.requestTimeout = requestTimeout
    }

    /// Endpoint, region and access key id; the secret redacted.
    public var description: String {
        "S3 \(endpoint) (\(endpoint.pathStyle ? "path-style" : "virtual-host"), region \(region), \(credentials))"
    }

    /// The configuration the AWS tools would use in this environment.
    ///
    /// Credentials: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, else `AWS_PROFILE` (default
    /// "default") from `~/.aws/credentials` and `~/.aws/config` (`AWS_SHARED_CREDENTIALS_FILE` and `AWS_CONFIG_FILE`
    /// honoured). Region: `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's, else `us-east-1`. Endpoint:
    /// `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL` (path-style), else the region's AWS endpoint (virtual-host style).
    /// `http://` only for a loopback host or with `allowHTTP`. Errors are one line and never include a secret.
    public static func fromEnvironment(_ environment: [String: String], allowHTTP: Bool) throws(S3Error)
        -> S3Configuration
    {
        let reader = EnvironmentReader(environment: environment)
        let profile = try reader.profile()
        let credentials = try reader.credentials(profile: profile)
        let region = reader.region(profile: profile)
        let endpoint = try reader.endpoint(region: region, profile: profile, allowHTTP: allowHTTP)
        return S3Configuration(
            endpoint: endpoint, region: region, credentials: credentials,
            caBundlePath: reader.nonEmpty("AWS_CA_BUNDLE") ?? profile.value("ca_bundle"))
    }
}
