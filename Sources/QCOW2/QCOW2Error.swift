import FileIO

/// Why a qcow2 image could not be read or written: a code, a one-line message, and the cause.
public struct QCOW2Error: Error, Sendable, CustomStringConvertible {
    /// The kind of failure. A struct rather than an enum so that codes can be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Kind: Hashable, Sendable {
            case notQCOW2, unsupported, corrupt, backingChain, io, invalidArgument, interrupted
        }
        private let kind: Kind
        private init(_ kind: Kind) { self.kind = kind }

        /// The file is not a qcow2 image, or not one this version understands.
        public static let notQCOW2 = Code(.notQCOW2)
        /// The image uses a feature that cannot be read safely (an unknown incompatible feature, encryption,
        /// an external data file, an unknown compression type, extended L2 entries).
        public static let unsupported = Code(.unsupported)
        /// The image's structures contradict each other or point outside the file.
        public static let corrupt = Code(.corrupt)
        /// The backing chain loops, is too deep, or names a file that cannot be opened.
        public static let backingChain = Code(.backingChain)
        /// A system call on the image failed; the cause is its `Errno`.
        public static let io = Code(.io)
        /// The caller asked for something the image cannot do (a read past its end, a second finalize).
        public static let invalidArgument = Code(.invalidArgument)
        /// The task reading the image was cancelled (SIGINT, SIGTERM) before the read began.
        public static let interrupted = Code(.interrupted)

        public var description: String {
            switch kind {
            case .notQCOW2: "not qcow2"
            case .unsupported: "unsupported"
            case .corrupt: "corrupt"
            case .backingChain: "backing chain"
            case .io: "I/O"
            case .invalidArgument: "invalid argument"
            case .interrupted: "interrupted"
            }
        }
    }

    /// The kind of failure.
    public var code: Code
    /// One line: what is wrong, naming the image.
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

extension QCOW2Error: BlockingWorkFailure {
    package static func interrupted() -> QCOW2Error { QCOW2Error(.interrupted, "interrupted") }

    package static func threadPoolUnavailable(_ error: any Error) -> QCOW2Error {
        QCOW2Error(.io, "the I/O thread pool is not running: \(error)")
    }
}
