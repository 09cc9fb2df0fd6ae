import FileIO
import SystemPackage

/// Why a repository operation failed: a code, a one-line message that says what to do, and the cause.
public struct RepositoryError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure. A struct rather than an enum so that codes can be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Kind: Hashable, Sendable {
            case locked, notFound, corrupt, io, noSpace, cancelled, notARepository, invalidName, alreadyARepository
            case unsupportedLocation, keyRequired, wrongKey, keyFile
        }
        private let kind: Kind
        private init(_ kind: Kind) { self.kind = kind }

        /// Another process holds the domain's lock: a backup of it is running.
        public static let locked = Code(.locked)
        /// No such domain or point in the repository.
        public static let notFound = Code(.notFound)
        /// A manifest or folder does not have the expected form.
        public static let corrupt = Code(.corrupt)
        /// A file system call failed.
        public static let io = Code(.io)
        /// The repository's file system is full (or the user's quota on it is used up).
        public static let noSpace = Code(.noSpace)
        /// The caller asked to stop (SIGINT, SIGTERM).
        public static let cancelled = Code(.cancelled)
        /// The folder is not a repository: it has no `repository.json` (or is not a folder).
        public static let notARepository = Code(.notARepository)
        /// A name asked for (a domain, a point) cannot name anything in a repository: see ``RepositoryNames``.
        public static let invalidName = Code(.invalidName)
        /// `create` was asked for a folder that is a repository already.
        public static let alreadyARepository = Code(.alreadyARepository)
        /// The repository is given as a URL (`s3://`, `sftp://`): only local folders are repositories for now.
        public static let unsupportedLocation = Code(.unsupportedLocation)
        /// The repository is encrypted and no key was given.
        public static let keyRequired = Code(.keyRequired)
        /// The key given is not the encrypted repository's key.
        public static let wrongKey = Code(.wrongKey)
        /// The key file cannot be used: missing, unreadable, open to others, or of no usable form.
        public static let keyFile = Code(.keyFile)

        public var description: String {
            switch kind {
            case .locked: "locked"
            case .notFound: "not found"
            case .corrupt: "corrupt"
            case .io: "I/O"
            case .noSpace: "no space"
            case .cancelled: "cancelled"
            case .notARepository: "not a repository"
            case .invalidName: "invalid name"
            case .alreadyARepository: "already a repository"
            case .unsupportedLocation: "unsupported location"
            case .keyRequired: "key required"
            case .wrongKey: "wrong key"
            case .keyFile: "key file"
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

extension RepositoryError: BlockingWorkFailure {
    package static func interrupted() -> RepositoryError { RepositoryError(.cancelled, "interrupted") }

    package static func threadPoolUnavailable(_ error: any Error) -> RepositoryError {
        RepositoryError(.io, "the I/O thread pool is not running: \(error)")
    }
}

extension RepositoryError {
    /// A failed file call, with the errno as the cause. A full disk (or quota) gets its own code and says what to
    /// do, so that a commit that runs out of space is recognisable.
    init(failed what: String, _ path: String, _ errno: Errno) {
        switch errno {
        case .noSpace, .diskQuotaExceeded:
            self.init(
                .noSpace, "no space left for \(path) (\(errno)); free space or choose another repository", cause: errno)
        default:
            self.init(.io, "cannot \(what) \(path): \(errno)", cause: errno)
        }
    }
}
