import Repository

/// How much a backup copies.
public enum BackupLevel: String, Sendable, Codable, CaseIterable {
    /// Full when the chain cannot continue, incremental otherwise.
    case auto
    /// Every disk in full, starting a new chain.
    case full
    /// Only changes since the newest point; fails when the chain cannot continue.
    case incremental
}

/// The checkpoint names Pullback creates: `pullback-<repository tag>-<point id>`, recognisably one repository's, so
/// that the checkpoints of other repositories (of the same domain) and of other tools are left alone.
public enum CheckpointName {
    static let prefix = "pullback-"

    /// The checkpoint created with point `id` of the repository `repository`.
    public static func forPoint(_ id: String, of repository: RepositoryIdentity) -> String {
        prefix + repository.tag + "-" + id
    }

    /// Whether `name` was made by the repository `repository`.
    public static func isMade(_ name: String, by repository: RepositoryIdentity) -> Bool {
        name.hasPrefix(prefix + repository.tag + "-")
    }
}
