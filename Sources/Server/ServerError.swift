/// Why a server could not start: its socket, its address or its TLS files.
public struct ServerError: Error, Sendable, CustomStringConvertible {
    /// What failed. A struct rather than an enum so that codes can be added.
    public struct Code: Hashable, Sendable {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// The socket or the address could not be bound (taken, not allowed, an existing file).
        public static let cannotListen = Code("cannot listen")
        /// A certificate, key or CA file could not be read or does not fit the others.
        public static let tlsFiles = Code("TLS files")
    }

    public var code: Code
    /// One line for the user: what failed and what to do.
    public var message: String
    /// The error from below (an `Errno`, NIO's or BoringSSL's), when there is one.
    public var cause: (any Error & Sendable)?

    init(_ code: Code, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String { message }
}
