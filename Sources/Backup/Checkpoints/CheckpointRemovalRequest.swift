/// What `pullback checkpoints DOMAIN --remove` removes: the checkpoints of a repository, named by its folder or its tag.
public struct CheckpointRemovalRequest: Sendable {
    /// Whose checkpoints.
    public enum Owner: Sendable, Equatable {
        /// The repository at this folder, which must be one.
        case repository(String)
        /// The repository with this tag, wherever it is (or whether it is at all).
        case tag(String)
    }

    /// The domain's name.
    public var domain: String
    /// Whose checkpoints to remove.
    public var owner: Owner
    /// Also the checkpoints the repository holds points for: its next backup is then a full.
    public var all: Bool
    /// The libvirt URI; nil uses `LIBVIRT_DEFAULT_URI`, else `qemu:///system`.
    public var connectURI: String?

    public init(domain: String, owner: Owner, all: Bool = false, connectURI: String? = nil) {
        self.domain = domain
        self.owner = owner
        self.all = all
        self.connectURI = connectURI
    }
}

/// What `pullback checkpoints DOMAIN --remove` did.
public struct CheckpointRemovalOutcome: Sendable, Codable, Equatable {
    /// A checkpoint libvirt did not delete, and its message.
    public struct Failure: Sendable, Codable, Equatable {
        /// The checkpoint's name.
        public var name: String
        /// libvirt's message.
        public var message: String
    }

    /// A checkpoint of the tag that a repository at another folder made (a copy: it has the same id), left.
    public struct HeldElsewhere: Sendable, Codable, Equatable {
        /// The checkpoint's name.
        public var name: String
        /// The other repository's path, as the checkpoint's description names it.
        public var repository: String
        /// Why it is left.
        public var why: String
    }

    /// The domain's name.
    public var domain: String
    /// The repository tag whose checkpoints were removed.
    public var tag: String
    /// The repository's path: the one given, or the one the checkpoints' descriptions name.
    public var repository: String?
    /// The checkpoints deleted, parents first.
    public var removed: [String] = []
    /// The repository's checkpoints left because it holds a point made with them.
    public var kept: [String]
    /// The checkpoints of the tag a repository at another folder made: never removed through this one.
    public var heldElsewhere: [HeldElsewhere] = []
    /// The checkpoints libvirt did not delete.
    public var failed: [Failure] = []
    /// Whether the checkpoint of the repository's newest point was removed: its next backup of the domain is a full.
    public var nextBackupFull = false
    /// Whether the domain was shut off, started paused for the deletion, and shut off again.
    public var startedDomain = false

    enum CodingKeys: String, CodingKey {
        case domain, tag, repository, removed, kept, failed
        case heldElsewhere = "held_elsewhere"
        case nextBackupFull = "next_backup_full"
        case startedDomain = "started_domain"
    }
}
