import FileIO

/// Why a qcow2 image could not be read or written: a code, a one-line message, and the cause.
public struct QCOW2Error: Error, Sendable, CustomStringConvertible {
    /// The kind of failure. A struct rather than an enum so that codes can be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// The file is not a qcow2 image, or not one this version understands.
        public static let notQCOW2 = Code("not qcow2")
        /// The image uses a feature that cannot be read safely (an unknown incompatible feature, encryption,
        /// an external data file, zstd compression, extended L2 entries).
        public static let unsupported = Code("unsupported")
        /// The image's structures contradict each other or point outside the file.
        public static let corrupt = Code("corrupt")
        /// The backing chain loops, is too deep, or names a file that cannot be opened.
        public static let backingChain = Code("backing chain")
        /// A system call on the image failed; the cause is its `Errno`.
        public static let io = Code("I/O")
        /// The caller asked for something the image cannot do (a read past its end, a second finalize).
        public static let invalidArgument = Code("invalid argument")

        /// The task reading the image was cancelled (SIGINT, SIGTERM) before the read began.
        public static let interrupted = Code("interrupted")

        public var description: String { name }
    }

    public var code: Code
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
