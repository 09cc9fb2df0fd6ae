/// Why talking to the server failed: what the probe was doing, and what happened.
public struct ProbeError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Kind: Hashable, Sendable { case connect, closed, timedOut, protocolViolation, tls, invalidRequest }
        private let kind: Kind
        private init(_ kind: Kind) { self.kind = kind }

        /// The server could not be reached.
        public static let connect = Code(.connect)
        /// The server closed the connection.
        public static let closed = Code(.closed)
        /// The server sent nothing for the stall timeout.
        public static let timedOut = Code(.timedOut)
        /// The server sent what the protocol does not allow there.
        public static let protocolViolation = Code(.protocolViolation)
        /// TLS could not be set up.
        public static let tls = Code(.tls)
        /// The probe was asked for something it cannot do (a URI it cannot reach, say).
        public static let invalidRequest = Code(.invalidRequest)

        public var description: String {
            switch kind {
            case .connect: "connect"
            case .closed: "closed"
            case .timedOut: "timed out"
            case .protocolViolation: "protocol violation"
            case .tls: "tls"
            case .invalidRequest: "invalid request"
            }
        }
    }

    /// What kind of failure this is.
    public var code: Code
    /// One line: what was being done, and what happened.
    public var message: String
    /// The error underneath, when there is one.
    public var cause: (any Error & Sendable)?

    /// Creates an error.
    public init(_ code: Code, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String { message }
}
