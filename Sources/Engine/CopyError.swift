import FileIO

/// Why a copy failed: a code, a one-line message that says what is wrong and what to do, and the cause.
public struct CopyError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure. A struct rather than an enum so that codes can be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Kind: Hashable, Sendable {
            case source, unsupported, target, noSpace, targetMismatch, interrupted
        }
        private let kind: Kind
        private init(_ kind: Kind) { self.kind = kind }

        /// The source could not be reached, or failed while being read.
        public static let source = Code(.source)
        /// The source lacks something the copy needs, such as the dirty bitmap asked for.
        public static let unsupported = Code(.unsupported)
        /// The target could not be created, opened or written.
        public static let target = Code(.target)
        /// The target's file system is full.
        public static let noSpace = Code(.noSpace)
        /// The target does not fit this copy: it exists already, has another size, or is marked incomplete.
        public static let targetMismatch = Code(.targetMismatch)
        /// The copy was cancelled (for example by SIGINT).
        public static let interrupted = Code(.interrupted)

        public var description: String {
            switch kind {
            case .source: "source"
            case .unsupported: "unsupported"
            case .target: "target"
            case .noSpace: "no space"
            case .targetMismatch: "target mismatch"
            case .interrupted: "interrupted"
            }
        }
    }

    /// The kind of failure.
    public var code: Code
    /// One line: what is wrong and what to do about it.
    public var message: String
    /// The error that caused this one, if any: an `Errno` for a failed file call.
    public var cause: (any Error & Sendable)?

    public init(_ code: Code, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String { message }
}

extension CopyError: BlockingWorkFailure {
    package static func interrupted() -> CopyError { CopyError(.interrupted, "interrupted") }

    package static func threadPoolUnavailable(_ error: any Error) -> CopyError {
        CopyError(.target, "the I/O thread pool is not running: \(error)")
    }
}
