import Foundation
import Testing

@testable import S3

/// `S3Configuration.fromEnvironment`: precedence of variables over profile files, `[profile x]` in the config file,
/// region and endpoint rules, plain http only on loopback, and one-line errors that never show a secret.
@Suite struct S3ConfigurationTests {
    /// A temporary HOME with `~/.aws/credentials` and `~/.aws/config`.
    struct Home {
        let path: String

        init(credentials: String? = nil, config: String? = nil) throws {
            path = NSTemporaryDirectory() + "pb-s3-home-" + UUID().uuidString
            try FileManager.default.createDirectory(atPath: path + "/.aws", withIntermediateDirectories: true)
            try credentials?.write(toFile: path + "/.aws/credentials", atomically: true, encoding: .utf8)
            try config?.write(toFile: path + "/.aws/config", atomically: true, encoding: .utf8)
        }

        func remove() { try? FileManager.default.removeItem(atPath: path) }
    }

    static let credentialsFile = """
        [default]
        aws_access_key_id = DEFAULTKEY
        aws_secret_access_key = default-secret

        # a comment
        [backup]
        aws_access_key_id=BACKUPKEY
        aws_secret_access_key=backup-secret
        aws_session_token = backup-token
        """
    static let configFile = """
        [default]
        region = eu-west-1

        [profile backup]
        region = eu-central-1
        s3 =
          addressing_style = path

        [profile configonly]
        aws_access_key_id = CONFIGKEY
        aws_secret_access_key = config-secret
        region = ap-south-1
        """

    @Test func environmentKeysWinOverProfile() throws {
        let home = try Home(credentials: Self.credentialsFile, config: Self.configFile)
        defer { home.remove() }
        let configuration = try S3Configuration.fromEnvironment(
            [
                "HOME": home.path, "AWS_ACCESS_KEY_ID": "ENVKEY", "AWS_SECRET_ACCESS_KEY": "env-secret",
                "AWS_SESSION_TOKEN": "env-token", "AWS_PROFILE": "backup",
            ], allowHTTP: false)
        #expect(configuration.credentials.accessKeyID == "ENVKEY")
        #expect(configuration.credentials.secretAccessKey == "env-secret")
        #expect(configuration.credentials.sessionToken == "env-token")
        #expect(configuration.region == "eu-central-1")
        #expect(
            configuration.endpoint
                == S3Endpoint(
                    scheme: "https", host: "s3.eu-central-1.amazonaws.com", port: nil,
                    pathStyle: false))
    }

    @Test func profileFromBothFiles() throws {
        let home = try Home(credentials: Self.credentialsFile, config: Self.configFile)
        defer { home.remove() }
        let backup = try S3Configuration.fromEnvironment(
            ["HOME": home.path, "AWS_PROFILE": "backup"], allowHTTP: false)
        #expect(backup.credentials.accessKeyID == "BACKUPKEY")
        #expect(backup.credentials.secretAccessKey == "backup-secret")
        #expect(backup.credentials.sessionToken == "backup-token")
        #expect(backup.region == "eu-central-1")

        let configOnly = try S3Configuration.fromEnvironment(
            ["HOME": home.path, "AWS_PROFILE": "configonly"], allowHTTP: false)
        #expect(configOnly.credentials.accessKeyID == "CONFIGKEY")
        #expect(configOnly.region == "ap-south-1")

        let standard = try S3Configuration.fromEnvironment(
            ["HOME": home.path, "AWS_DEFAULT_REGION": "us-west-2"], allowHTTP: false)
        #expect(standard.credentials.accessKeyID == "DEFAULTKEY")
        #expect(standard.region == "us-west-2")
        let regionWins = try S3Configuration.fromEnvironment(
            ["HOME": home.path, "AWS_REGION": "sa-east-1", "AWS_DEFAULT_REGION": "us-west-2"], allowHTTP: false)
        #expect(regionWins.region == "sa-east-1")
    }

    @Test func filesNamedByVariables() throws {
        let home = try Home()
        defer { home.remove() }
        try "[x]\naws_access_key_id = FILEKEY\naws_secret_access_key = s\n".write(
            toFile: home.path + "/creds", atomically: true, encoding: .utf8)
        try "[profile x]\nregion = ca-central-1\n".write(toFile: home.path + "/conf", atomically: true, encoding: .utf8)
        let configuration = try S3Configuration.fromEnvironment(
            [
                "HOME": home.path, "AWS_PROFILE": "x", "AWS_SHARED_CREDENTIALS_FILE": home.path + "/creds",
                "AWS_CONFIG_FILE": home.path + "/conf",
            ], allowHTTP: false)
        #expect(configuration.credentials.accessKeyID == "FILEKEY")
        #expect(configuration.region == "ca-central-1")
    }

    @Test func endpointVariables() throws {
        let keys = ["HOME": "/nonexistent", "AWS_ACCESS_KEY_ID": "K", "AWS_SECRET_ACCESS_KEY": "S"]
        let specific = try S3Configuration.fromEnvironment(
            keys.merging(["AWS_ENDPOINT_URL_S3": "https://s3.example.net:9000", "AWS_ENDPOINT_URL": "https://other"]) {
                $1
            }, allowHTTP: false)
        #expect(specific.endpoint == S3Endpoint(scheme: "https", host: "s3.example.net", port: 9000, pathStyle: true))
        let loopback = try S3Configuration.fromEnvironment(
            keys.merging(["AWS_ENDPOINT_URL": "http://127.0.0.1:8333/"]) { $1 }, allowHTTP: false)
        #expect(loopback.endpoint == S3Endpoint(scheme: "http", host: "127.0.0.1", port: 8333, pathStyle: true))
        #expect(loopback.region == "us-east-1")
        let ipv6 = try S3Configuration.fromEnvironment(
            keys.merging(["AWS_ENDPOINT_URL": "http://[::1]:8333"]) { $1 }, allowHTTP: false)
        #expect(ipv6.endpoint.host == "::1")
        #expect(ipv6.endpoint.authority == "[::1]:8333")
    }

    @Test func plainHTTPOnlyOnLoopbackOrWhenAllowed() throws {
        let environment = [
            "HOME": "/nonexistent", "AWS_ACCESS_KEY_ID": "K", "AWS_SECRET_ACCESS_KEY": "S",
            "AWS_ENDPOINT_URL": "http://127.0.0.1.example.com:8333",
        ]
        let error = #expect(throws: S3Error.self) {
            try S3Configuration.fromEnvironment(environment, allowHTTP: false)
        }
        #expect(error?.code == .configuration)
        #expect(
            error?.message
                == "AWS_ENDPOINT_URL http://127.0.0.1.example.com:8333 is plain http to a host that is not loopback: "
                + "use https, or allow plain http explicitly (pullback: --allow-http)")
        let allowed = try S3Configuration.fromEnvironment(environment, allowHTTP: true)
        #expect(allowed.endpoint.scheme == "http")
    }

    @Test func missingOrHalfKeysFailInOneLineWithoutSecrets() throws {
        let home = try Home(credentials: "[default]\naws_access_key_id = ONLYKEY\n")
        defer { home.remove() }
        let none = #expect(throws: S3Error.self) {
            try S3Configuration.fromEnvironment(["HOME": home.path], allowHTTP: false)
        }
        #expect(
            none?.message
                == "no S3 credentials: AWS_ACCESS_KEY_ID is not set and profile default has no aws_access_key_id and "
                + "aws_secret_access_key; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with "
                + "~/.aws/credentials")
        let half = #expect(throws: S3Error.self) {
            try S3Configuration.fromEnvironment(
                ["HOME": home.path, "AWS_SECRET_ACCESS_KEY": "very-secret-value"], allowHTTP: false)
        }
        #expect(half?.message == "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not: set both")
        let profile = #expect(throws: S3Error.self) {
            try S3Configuration.fromEnvironment(["HOME": home.path, "AWS_PROFILE": "nope"], allowHTTP: false)
        }
        #expect(profile?.message.hasPrefix("AWS_PROFILE nope is in neither ") == true)
        for error in [none, half, profile] {
            #expect(error?.message.contains("\n") == false)
            #expect(error?.message.contains("very-secret-value") == false)
        }
    }

    @Test func descriptionRedactsSecrets() throws {
        let configuration = try S3Configuration.fromEnvironment(
            [
                "HOME": "/nonexistent", "AWS_ACCESS_KEY_ID": "VISIBLEKEY", "AWS_SECRET_ACCESS_KEY": "hidden-secret",
                "AWS_SESSION_TOKEN": "hidden-token",
            ], allowHTTP: false)
        let text = "\(configuration) \(configuration.credentials) \(String(reflecting: configuration.credentials))"
        #expect(text.contains("VISIBLEKEY"))
        #expect(!text.contains("hidden-secret"))
        #expect(!text.contains("hidden-token"))
    }

    @Test func badEndpointAndRegion() {
        let keys = ["HOME": "/nonexistent", "AWS_ACCESS_KEY_ID": "K", "AWS_SECRET_ACCESS_KEY": "S"]
        let endpoint = #expect(throws: S3Error.self) {
            try S3Configuration.fromEnvironment(
                keys.merging(["AWS_ENDPOINT_URL": "ftp://host"]) { $1 }, allowHTTP: false)
        }
        #expect(
            endpoint?.message
                == "AWS_ENDPOINT_URL \"ftp://host\" is not an http(s)://HOST[:PORT] URL: check AWS_ENDPOINT_URL")
        let withPassword = #expect(throws: S3Error.self) {
            try S3Configuration.fromEnvironment(
                keys.merging(["AWS_ENDPOINT_URL": "https://user:pass-word-secret@host"]) { $1 }, allowHTTP: false)
        }
        #expect(withPassword?.message == "AWS_ENDPOINT_URL is not an http(s)://HOST[:PORT] URL: check AWS_ENDPOINT_URL")
        let region = #expect(throws: S3Error.self) {
            try S3Configuration.fromEnvironment(keys.merging(["AWS_REGION": "evil.com/x"]) { $1 }, allowHTTP: false)
        }
        #expect(region?.code == .configuration)
    }

    @Test func unreadableCABundleFailsInOneLine() throws {
        let home = try Home()
        defer { home.remove() }
        try "not a certificate\n".write(toFile: home.path + "/ca.pem", atomically: true, encoding: .utf8)
        var configuration = try S3Configuration.fromEnvironment(
            [
                "HOME": home.path, "AWS_ACCESS_KEY_ID": "K", "AWS_SECRET_ACCESS_KEY": "S",
                "AWS_CA_BUNDLE": home.path + "/ca.pem",
            ], allowHTTP: false)
        #expect(configuration.caBundlePath == home.path + "/ca.pem")
        for path in [home.path + "/ca.pem", home.path + "/missing.pem"] {
            configuration.caBundlePath = path
            let error = #expect(throws: S3Error.self) { _ = try S3Client(configuration) }
            #expect(error?.code == .configuration)
            #expect(error?.message == "cannot read the certificates in \(path): check AWS_CA_BUNDLE")
        }
    }
}
