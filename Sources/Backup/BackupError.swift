import Libvirt

/// Why a backup or restore failed: a code, a one-line message that says what to do, and the cause.
public struct BackupError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure. A struct rather than an enum so that codes can be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// libvirt refused or failed (unknown domain, backup job refused...).
        public static let libvirt = Code("libvirt")
        /// The repository refused (locked, unknown point...).
        public static let repository = Code("repository")
        /// Copying a disk failed.
        public static let copy = Code("copy")
        /// What was asked cannot be done (incremental without a base, no disk to back up...).
        public static let invalidRequest = Code("invalid request")
        /// The run was cancelled (SIGINT, SIGTERM).
        public static let interrupted = Code("interrupted")

        public var description: String { name }
    }

    public var code: Code
    public var message: String
    public var cause: (any Error & Sendable)?

    public init(_ code: Code, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String { message }

    /// libvirt refused the base checkpoint because a disk's bitmap for it is missing or broken.
    var isUnusableCheckpoint: Bool {
        (cause as? LibvirtError)?.libvirtCode == 109  // VIR_ERR_CHECKPOINT_INCONSISTENT
    }
}
