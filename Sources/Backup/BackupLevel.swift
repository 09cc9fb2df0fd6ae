/// How much a backup copies.
public enum BackupLevel: String, Sendable, Codable, CaseIterable {
    /// Full when the chain cannot continue, incremental otherwise.
    case auto
    /// Every disk in full, starting a new chain.
    case full
    /// Only changes since the newest point; fails when the chain cannot continue.
    case incremental
}

/// The checkpoint names Pullback creates: recognisably this tool's, so other tools' checkpoints are left alone.
public enum CheckpointName {
    static let prefix = "pullback-"

    /// The checkpoint created with point `id`.
    public static func forPoint(_ id: String) -> String { prefix + id }

    /// Whether `name` is one of Pullback's checkpoints.
    public static func isPullbacks(_ name: String) -> Bool { name.hasPrefix(prefix) }
}
