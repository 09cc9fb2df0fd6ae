#if canImport(Glibc)
    import Glibc
#endif

/// An error reported by libnbd or by the NBD server, with libnbd's message and errno.
///
/// libnbd keeps its last error per thread; ``NBDError`` is built on the thread that made the failing call,
/// right after it, so the message always belongs to that call.
public struct NBDError: Error, Sendable, CustomStringConvertible {
    /// What kind of operation failed. A struct rather than an enum so that codes can be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Kind: Hashable, Sendable {
            case connect, unsupported, blockStatus, read, disconnected, cancelled, protocolViolation, invalidArgument
            case stalled, untrustedServer
        }
        private let kind: Kind
        private init(_ kind: Kind) { self.kind = kind }

        /// Creating the handle, connecting or negotiating with the server failed.
        public static let connect = Code(.connect)
        /// The server does not offer something the caller asked for (a meta context, multi-conn).
        public static let unsupported = Code(.unsupported)
        /// A block status command failed.
        public static let blockStatus = Code(.blockStatus)
        /// A read command failed.
        public static let read = Code(.read)
        /// The connection is closed or died; no more commands can be sent on it.
        public static let disconnected = Code(.disconnected)
        /// The task waiting for the command was cancelled, which closes the connection.
        public static let cancelled = Code(.cancelled)
        /// Commands were in flight and no reply came for the connection's stall timeout, so it was closed.
        public static let stalled = Code(.stalled)
        /// The server answered in a way the protocol does not allow.
        public static let protocolViolation = Code(.protocolViolation)
        /// The caller passed an argument libnbd or the protocol cannot accept.
        public static let invalidArgument = Code(.invalidArgument)
        /// The TLS server's certificate does not verify: another CA signed it, or it names another host.
        public static let untrustedServer = Code(.untrustedServer)

        public var description: String {
            switch kind {
            case .connect: "connect"
            case .unsupported: "unsupported"
            case .blockStatus: "block status"
            case .read: "read"
            case .disconnected: "disconnected"
            case .cancelled: "cancelled"
            case .protocolViolation: "protocol violation"
            case .invalidArgument: "invalid argument"
            case .stalled: "stalled"
            case .untrustedServer: "untrusted server"
            }
        }
    }

    /// What kind of operation failed.
    public var code: Code
    /// A readable message: libnbd's own when it gave one.
    public var message: String
    /// The errno libnbd or the server reported, or 0 when there is none.
    public var errno: Int32

    public init(_ code: Code, _ message: String, errno: Int32 = 0) {
        self.code = code
        self.message = message
        self.errno = errno
    }

    public var description: String { message }

    /// An error from a failed command completion, where libnbd gives only an errno.
    static func completion(_ code: Code, _ what: String, errno: Int32) -> NBDError {
        let reason = errno == ENOTCONN ? "the connection to the NBD server was lost" : String(cString: strerror(errno))
        return NBDError(errno == ENOTCONN ? .disconnected : code, "\(what): \(reason)", errno: errno)
    }
}
