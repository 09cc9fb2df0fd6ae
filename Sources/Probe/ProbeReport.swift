/// What one check found.
public struct CheckResult: Sendable, Equatable, Codable {
    /// A check's verdict.
    public enum Outcome: String, Sendable, Codable {
        case pass, fail, skip
    }

    /// The check's name, `group.check` (`read.past-end`).
    public var name: String
    /// Its verdict.
    public var result: Outcome
    /// One line: the rule and what the server did (a failure), why it was not run (a skip), or what was seen.
    public var reason: String?
    /// How long it took.
    public var seconds: Double

    /// A verdict of check `name`.
    public init(name: String, result: Outcome, reason: String?, seconds: Double) {
        self.name = name
        self.result = result
        self.reason = reason
        self.seconds = seconds
    }
}

/// What `pullback probe` found about one server.
public struct ProbeReport: Sendable, Codable {
    /// The export as the first handshake described it.
    public struct Export: Sendable, Equatable, Codable {
        public var name: String
        public var size: UInt64
        /// The transmission flags.
        public var flags: UInt16
        public var minimumBlockSize: UInt32?
        public var preferredBlockSize: UInt32?
        public var maximumBlockSize: UInt32?
        /// The meta contexts the server lists for it.
        public var metaContexts: [String]

        enum CodingKeys: String, CodingKey {
            case name, size, flags
            case minimumBlockSize = "minimum_block_size"
            case preferredBlockSize = "preferred_block_size"
            case maximumBlockSize = "maximum_block_size"
            case metaContexts = "meta_contexts"
        }
    }

    /// The URI probed, as given.
    public var uri: String
    /// The export; nil when no handshake reached it.
    public var export: Export?
    /// Every check run, in order.
    public var checks: [CheckResult]
    /// How long the whole probe took.
    public var seconds: Double

    /// How many checks had `outcome`.
    public func count(_ outcome: CheckResult.Outcome) -> Int { checks.filter { $0.result == outcome }.count }

    /// Whether any check failed: the probe's exit code.
    public var failed: Bool { count(.fail) > 0 }

    enum CodingKeys: String, CodingKey {
        case uri, export, checks, seconds
    }
}
