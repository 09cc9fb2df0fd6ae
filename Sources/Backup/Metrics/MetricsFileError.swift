import FileIO
import SystemPackage

/// Why the metrics file was not written: a code, a one-line message saying what to do, and the cause. The file is
/// then as it was before the run.
public struct MetricsFileError: Error, Sendable, CustomStringConvertible, BlockingWorkFailure {
    /// The kind of failure. A struct rather than an enum so that codes can be added.
    public struct Code: Hashable, Sendable {
        private enum Kind: Hashable, Sendable { case io, locked, notMetrics, interrupted }
        private let kind: Kind
        private init(_ kind: Kind) { self.kind = kind }

        /// A file call failed (the folder is missing or read-only, say).
        public static let io = Code(.io)
        /// Another run held the file's lock for longer than a run needs to write it.
        public static let locked = Code(.locked)
        /// The file is too large to be Pullback's metrics file.
        public static let notMetrics = Code(.notMetrics)
        /// The run was cancelled before the file was written.
        public static let interrupted = Code(.interrupted)
    }

    /// The kind of failure.
    public var code: Code
    /// One line for people: what failed and what to do about it.
    public var message: String
    /// The system call's error behind this one, when there is one.
    public var cause: Errno?

    init(_ code: Code, _ message: String, cause: Errno? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    /// `call` failed on `path` with `errno`.
    init(failed call: String, _ path: String, _ errno: Errno) {
        self.init(.io, "cannot \(call) the metrics file \(path): \(errno)", cause: errno)
    }

    public var description: String { message }

    public static func interrupted() -> MetricsFileError {
        MetricsFileError(.interrupted, "interrupted before the metrics file was written")
    }

    public static func threadPoolUnavailable(_ error: any Error) -> MetricsFileError {
        MetricsFileError(.io, "cannot write the metrics file: the I/O thread pool is unavailable (\(error))")
    }
}
