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
        isMade(name, byTag: repository.tag)
    }

    /// Whether `name` was made by the repository whose tag is `tag`.
    public static func isMade(_ name: String, byTag tag: String) -> Bool {
        name.hasPrefix(prefix + tag + "-")
    }

    /// Whether `name` looks like a checkpoint Pullback made: it starts with `pullback-`.
    public static func isPullbacks(_ name: String) -> Bool {
        name.hasPrefix(prefix)
    }

    /// The repository tag in `name`, nil unless it is `pullback-` then a tag (8 lowercase hex digits), `-` and more.
    public static func tag(of name: String) -> String? {
        guard name.hasPrefix(prefix) else { return nil }
        let rest = name.dropFirst(prefix.count)
        let tag = rest.prefix(8)
        guard isTag(String(tag)), rest.dropFirst(8).first == "-", rest.count > 9 else { return nil }
        return String(tag)
    }

    /// Whether `text` has the form of a repository tag (``RepositoryIdentity/tag``): 8 lowercase hex digits.
    public static func isTag(_ text: String) -> Bool {
        text.utf8.count == 8 && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }
}
