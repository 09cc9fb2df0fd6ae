/// The keys requests are signed with. Its description never shows the secret or the session token.
public struct S3Credentials: Sendable, CustomStringConvertible, CustomReflectable {
    /// `AWS_ACCESS_KEY_ID`: not secret, named in messages.
    public var accessKeyID: String
    /// `AWS_SECRET_ACCESS_KEY`.
    public var secretAccessKey: String
    /// `AWS_SESSION_TOKEN`, sent as `x-amz-security-token` when set.
    public var sessionToken: String?

    /// Credentials from their parts.
    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    /// The access key id with the secret redacted.
    public var description: String {
        "access key \(accessKeyID), secret <redacted>" + (sessionToken == nil ? "" : ", session token <redacted>")
    }

    /// What `dump` and debuggers show: the access key id only.
    public var customMirror: Mirror {
        Mirror(self, children: ["accessKeyID": accessKeyID, "secretAccessKey": "<redacted>"])
    }
}
