import Foundation
import UntrustedText

/// Reads the AWS environment variables and profile files for `S3Configuration.fromEnvironment`. No message it makes
/// contains a secret.
struct EnvironmentReader {
    let environment: [String: String]

    /// The variable's value, nil when unset or empty.
    func nonEmpty(_ name: String) -> String? {
        guard let value = environment[name]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        return value
    }

    /// `AWS_PROFILE` (or "default") read from the two files; a file that does not exist contributes nothing.
    func profile() throws(S3Error) -> AWSProfile {
        let name = nonEmpty("AWS_PROFILE") ?? "default"
        let home = nonEmpty("HOME") ?? NSHomeDirectory()
        let credentialsPath = nonEmpty("AWS_SHARED_CREDENTIALS_FILE") ?? home + "/.aws/credentials"
        let configPath = nonEmpty("AWS_CONFIG_FILE") ?? home + "/.aws/config"
        let profile = AWSProfile(
            name: name,
            credentialsFile: try Self.read(credentialsPath).map {
                AWSProfileFile(text: $0, profile: name, isConfigFile: false)
            },
            configFile: try Self.read(configPath).map { AWSProfileFile(text: $0, profile: name, isConfigFile: true) })
        if nonEmpty("AWS_PROFILE") != nil, !profile.found, nonEmpty("AWS_ACCESS_KEY_ID") == nil {
            throw S3Error(
                .configuration,
                "AWS_PROFILE \(name) is in neither \(credentialsPath) nor \(configPath): check the profile name")
        }
        return profile
    }

    /// The keys: the environment's, else the profile's.
    func credentials(profile: AWSProfile) throws(S3Error) -> S3Credentials {
        if let keyID = nonEmpty("AWS_ACCESS_KEY_ID") {
            guard let secret = nonEmpty("AWS_SECRET_ACCESS_KEY") else {
                throw S3Error(.configuration, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not: set both")
            }
            return S3Credentials(
                accessKeyID: keyID, secretAccessKey: secret, sessionToken: nonEmpty("AWS_SESSION_TOKEN"))
        }
        if nonEmpty("AWS_SECRET_ACCESS_KEY") != nil {
            throw S3Error(.configuration, "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not: set both")
        }
        guard let keyID = profile.value("aws_access_key_id"), let secret = profile.value("aws_secret_access_key")
        else {
            let what = profile.found ? "has no aws_access_key_id and aws_secret_access_key" : "was not found"
            throw S3Error(
                .configuration,
                "no S3 credentials: AWS_ACCESS_KEY_ID is not set and profile \(profile.name) \(what); set "
                    + "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with ~/.aws/credentials")
        }
        return S3Credentials(
            accessKeyID: keyID, secretAccessKey: secret, sessionToken: profile.value("aws_session_token"))
    }

    /// `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's `region`, else `us-east-1`.
    func region(profile: AWSProfile) -> String {
        nonEmpty("AWS_REGION") ?? nonEmpty("AWS_DEFAULT_REGION") ?? profile.value("region") ?? "us-east-1"
    }

    /// `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL` or the profile's `endpoint_url` (path-style), else AWS's endpoint
    /// for the region (virtual-host style).
    func endpoint(region: String, profile: AWSProfile, allowHTTP: Bool) throws(S3Error) -> S3Endpoint {
        let named = [
            ("AWS_ENDPOINT_URL_S3", nonEmpty("AWS_ENDPOINT_URL_S3")),
            ("AWS_ENDPOINT_URL", nonEmpty("AWS_ENDPOINT_URL")),
            ("endpoint_url of profile \(profile.name)", profile.value("endpoint_url")),
        ]
        guard let (source, url) = named.first(where: { $0.1 != nil }).map({ ($0.0, $0.1 ?? "") }) else {
            guard region.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" }), region.allSatisfy(\.isASCII) else {
                throw S3Error(
                    .configuration, "region \(UntrustedText.quoted(region)) is not a region name: check AWS_REGION")
            }
            return S3Endpoint(scheme: "https", host: "s3.\(region).amazonaws.com", port: nil, pathStyle: false)
        }
        let endpoint = try Self.parseEndpoint(url, source: source)
        if endpoint.scheme == "http", !endpoint.isLoopback, !allowHTTP {
            throw S3Error(
                .configuration,
                "\(source) \(UntrustedText.escaped(url)) is plain http to a host that is not loopback: use https, or "
                    + "allow plain http explicitly (pullback: --allow-http)")
        }
        return endpoint
    }

    private static func parseEndpoint(_ url: String, source: String) throws(S3Error) -> S3Endpoint {
        // A URL with user:password@ is refused without being repeated: the password is a secret.
        let shown = url.contains("@") ? "" : " " + UntrustedText.quoted(url)
        let invalid = S3Error(.configuration, "\(source)\(shown) is not an http(s)://HOST[:PORT] URL: check \(source)")
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
            scheme == "http" || scheme == "https", var host = components.host, !host.isEmpty,
            components.user == nil, components.password == nil, components.query == nil,
            components.path.isEmpty || components.path == "/"
        else { throw invalid }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if let port = components.port, !(1...65535).contains(port) { throw invalid }
        return S3Endpoint(scheme: scheme, host: host, port: components.port, pathStyle: true)
    }

    private static func read(_ path: String) throws(S3Error) -> String? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw S3Error(.configuration, "cannot read \(path): check its permissions and that it is UTF-8 text")
        }
    }
}
