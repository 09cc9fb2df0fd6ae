/// A failed S3 call: what went wrong in one line (bucket, key, what to check), the HTTP status when the store
/// answered, and the underlying error. Never carries a secret.
public struct S3Error: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is; a struct over a private enum so that codes can be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Kind: Hashable, Sendable {
            case accessDenied, noSuchBucket, noSuchKey, preconditionFailed, throttled, server, unreachable
            case timedOut, invalidResponse, configuration, badRequest
        }
        private let kind: Kind
        private init(_ kind: Kind) { self.kind = kind }

        /// 403: the keys are wrong, or they may not do this.
        public static let accessDenied = Code(.accessDenied)
        /// The bucket does not exist.
        public static let noSuchBucket = Code(.noSuchBucket)
        /// The object does not exist.
        public static let noSuchKey = Code(.noSuchKey)
        /// 412: an `If-Match` or `If-None-Match` condition did not hold.
        public static let preconditionFailed = Code(.preconditionFailed)
        /// 429 or SlowDown on every attempt.
        public static let throttled = Code(.throttled)
        /// 5xx on every attempt.
        public static let server = Code(.server)
        /// No connection could be made on any attempt.
        public static let unreachable = Code(.unreachable)
        /// Every attempt ran past the per-attempt timeout.
        public static let timedOut = Code(.timedOut)
        /// The store answered with something that is not a valid S3 response.
        public static let invalidResponse = Code(.invalidResponse)
        /// The environment or profile files do not describe a usable store.
        public static let configuration = Code(.configuration)
        /// Any other 4xx: the request was refused as it stands.
        public static let badRequest = Code(.badRequest)

        /// The code's name, as in `S3Error.Code.accessDenied`.
        public var description: String { "\(kind)" }
    }

    /// What kind of failure this is.
    public var code: Code
    /// One line: the call, bucket and key, the HTTP status and S3 error code, and what to check.
    public var message: String
    /// The HTTP status of the last answer, when there was one.
    public var status: Int?
    /// The error underneath (a connection error, a parse error), when there is one.
    public var cause: (any Error & Sendable)?
    /// How many attempts the call made: above 1, an earlier attempt may have taken effect without its answer
    /// arriving.
    public var attempts = 1

    /// An error with the given parts.
    public init(_ code: Code, _ message: String, status: Int? = nil, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.status = status
        self.cause = cause
    }

    /// The message.
    public var description: String { message }
}
