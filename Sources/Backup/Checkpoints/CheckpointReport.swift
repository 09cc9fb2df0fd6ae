/// One checkpoint Pullback made on a domain, with the repository that made it and whether that repository still holds
/// a point for it: a line of `pullback checkpoints`.
public struct ListedCheckpoint: Sendable, Codable, Equatable {
    /// Whether the checkpoint's repository holds a point made with it.
    public enum Holding: String, Sendable, Codable {
        /// A point of the repository was made with it: a later backup may continue from it.
        case yes
        /// The repository is there and holds no point made with it: nothing will continue from it.
        case no
        /// No repository with the checkpoint's tag is at the recorded path (nothing, or something else, is there).
        case gone
        /// Something at the recorded path could not be read.
        case unreadable
        /// No repository path is known for the checkpoint.
        case unknown
    }

    /// The checkpoint's name, `pullback-<tag>-<point id>`.
    public var name: String
    /// The tag of the repository that made it (see `RepositoryIdentity.tag`), nil when the name carries none.
    public var tag: String?
    /// The repository's path: recorded in the checkpoint's description, or the `--repo` given for its tag.
    public var repository: String?
    /// Whether that repository holds a point made with the checkpoint.
    public var holdsPoint: Holding
    /// Why, for `gone`, `unreadable` and `unknown`.
    public var detail: String?

    enum CodingKeys: String, CodingKey {
        case name, tag, repository, detail
        case holdsPoint = "holds_point"
    }
}

/// What `pullback checkpoints DOMAIN` found: Pullback's checkpoints of the domain, parents first.
public struct CheckpointReport: Sendable, Codable, Equatable {
    /// The domain's name.
    public var domain: String
    /// The checkpoints whose names start with `pullback-`, parents first.
    public var checkpoints: [ListedCheckpoint]
    /// How many checkpoints of the domain were not made by Pullback (left out of ``checkpoints``).
    public var others: Int
}
