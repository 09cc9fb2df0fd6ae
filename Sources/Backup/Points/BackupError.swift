import Libvirt
import Repository

/// Why a backup or restore failed: a code, a one-line message that says what to do, and the cause.
public struct BackupError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure. A struct rather than an enum so that codes can be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Kind: Hashable, Sendable {
            case libvirt, repository, copy, invalidRequest, interrupted
        }
        private let kind: Kind
        private init(_ kind: Kind) { self.kind = kind }

        /// libvirt refused or failed (unknown domain, backup job refused...).
        public static let libvirt = Code(.libvirt)
        /// The repository refused (locked, unknown point...).
        public static let repository = Code(.repository)
        /// Copying a disk failed.
        public static let copy = Code(.copy)
        /// What was asked cannot be done (incremental without a base, no disk to back up...).
        public static let invalidRequest = Code(.invalidRequest)
        /// The run was cancelled (SIGINT, SIGTERM).
        public static let interrupted = Code(.interrupted)

        public var description: String {
            switch kind {
            case .libvirt: "libvirt"
            case .repository: "repository"
            case .copy: "copy"
            case .invalidRequest: "invalid request"
            case .interrupted: "interrupted"
            }
        }
    }

    /// The kind of failure.
    public var code: Code
    /// One line for people: what failed and what to do about it.
    public var message: String
    /// The lower layer's error behind this one, when there is one.
    public var cause: (any Error & Sendable)?

    /// Creates an error of `code` with a one-line `message`.
    public init(_ code: Code, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String { message }

    /// libvirt's `error`, with its message, as a failure of the step that asked libvirt.
    init(_ error: LibvirtError) {
        self.init(.libvirt, error.message, cause: error)
    }

    /// The repository's `error`, with its message, as a failure of the step that asked the repository.
    init(_ error: RepositoryError) {
        self.init(.repository, error.message, cause: error)
    }

    /// What a body that may throw anything threw (the repository's point transactions take such bodies): a
    /// ``BackupError`` as it is, the repository's as ``Code-swift.struct/repository``, anything else, from the copy
    /// or merge inside, as ``Code-swift.struct/copy``.
    init(thrownBy error: any Error) {
        switch error {
        case let error as BackupError: self = error
        case let error as RepositoryError: self.init(error)
        default: self.init(.copy, "\(error)")
        }
    }

    /// libvirt refused the base checkpoint because a disk's bitmap for it is missing or broken.
    var isUnusableCheckpoint: Bool {
        (cause as? LibvirtError)?.code == .inconsistentCheckpoint
    }
}
