/// What `pullback sync` did, domain by domain.
public struct SyncReport: Sendable, Codable, Equatable {
    /// A point that was not copied, and why.
    public struct NotCopied: Sendable, Codable, Equatable {
        /// Why a point was not copied.
        public enum Reason: String, Sendable, Codable {
            /// An object of the point is damaged or unreadable in the source (see `object`), or its manifest is not
            /// one the target accepts.
            case damaged
            /// The target has a point by that id with another manifest: it is left as it is.
            case conflict
            /// The point is based on a point that was not copied (see `basedOn`), or on one neither side has.
            case dependent
            /// Copying failed for another reason (see `message`).
            case failed
        }

        public var point: String
        public var reason: Reason
        /// The object of the point that failed its check, when one did (`vda.qcow2`).
        public var object: String?
        /// The point it depends on, for a ``Reason-swift.enum/dependent`` one.
        public var basedOn: String?
        /// One line saying what is wrong.
        public var message: String

        // Snake case, as the other commands' JSON summaries.
        enum CodingKeys: String, CodingKey {
            case point, reason, object, message
            case basedOn = "based_on"
        }
    }

    /// One domain.
    public struct Domain: Sendable, Codable, Equatable {
        public var domain: String
        /// The points copied, oldest first.
        public var copied: [String]
        /// How many of the points asked for the target had already, with the same manifest.
        public var present: Int
        /// The points that failed their checks or could not be copied (``NotCopied/Reason-swift.enum/damaged``,
        /// ``NotCopied/Reason-swift.enum/conflict``, ``NotCopied/Reason-swift.enum/failed``).
        public var failed: [NotCopied]
        /// The points left out because they depend on one that was not copied.
        public var skipped: [NotCopied]
        /// The bytes of the objects copied into the target.
        public var bytes: UInt64
        /// Why none of the domain's points could be considered (its points cannot be listed in the source); nil
        /// (absent from JSON) otherwise.
        public var problem: String?
    }

    /// Where the points came from.
    public var source: String
    /// Where they went.
    public var target: String
    /// Which points were asked for.
    public var scope: SyncRequest.Scope
    /// The domains, in the order synced.
    public var domains: [Domain]

    /// Whether every point asked for is in the target now.
    public var isComplete: Bool {
        domains.allSatisfy { $0.failed.isEmpty && $0.skipped.isEmpty && $0.problem == nil }
    }
    /// The points copied, over all domains.
    public var copiedCount: Int { domains.reduce(0) { $0 + $1.copied.count } }
    /// The bytes copied, over all domains.
    public var bytes: UInt64 { domains.reduce(0) { $0 + $1.bytes } }
}
