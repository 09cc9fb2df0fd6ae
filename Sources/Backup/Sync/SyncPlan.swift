import Repository

/// Which of a domain's source points a sync considers, and what it does with each, given what the target has and
/// what the sync has copied or given up so far: a point is copied only onto a base the target has with the same
/// manifest, so that a chain in the target is always whole.
struct SyncPlan {
    /// What to do with one point.
    enum Decision: Equatable {
        /// Copy it.
        case copy
        /// The target has it, with the same manifest.
        case present
        /// The target has a point by its id with another manifest.
        case conflict
        /// It is based on `parent`, which the target does not have as the source does (not copied, in conflict, or
        /// in neither repository: `inSource` says which).
        case dependent(on: String, inSource: Bool)
    }

    /// The source points to consider, oldest first.
    let candidates: [BackupPoint]
    private let sourceManifests: [String: BackupManifest]
    /// What the target holds now, by id: its own points and those copied so far.
    private var targetManifests: [String: BackupManifest]

    /// The plan of `scope` for `source` (a domain's committed points, oldest first) into a domain with `target`.
    init(source: [BackupPoint], target: [BackupPoint], scope: SyncRequest.Scope) {
        sourceManifests = Dictionary(source.map { ($0.id, $0.manifest) }, uniquingKeysWith: { first, _ in first })
        targetManifests = Dictionary(target.map { ($0.id, $0.manifest) }, uniquingKeysWith: { first, _ in first })
        switch scope {
        case .all:
            candidates = source
        case .latest:
            // The newest point and its parents down to the first the target has (kept, so that a conflict there
            // is named), or to the chain's end.
            let byID = Dictionary(source.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
            var chain: [BackupPoint] = []
            var next = source.last
            while let point = next, !chain.contains(where: { $0.id == point.id }) {
                chain.append(point)
                if targetManifests[point.id] != nil { break }
                next = point.manifest.parent.flatMap { byID[$0] }
            }
            candidates = chain.reversed()
        }
    }

    /// What to do with `point`, one of ``candidates``, now.
    func decision(for point: BackupPoint) -> Decision {
        if let held = targetManifests[point.id] { return held == point.manifest ? .present : .conflict }
        guard let parent = point.manifest.parent else { return .copy }
        let inSource = sourceManifests[parent]
        guard let held = targetManifests[parent], inSource == nil || held == inSource else {
            return .dependent(on: parent, inSource: inSource != nil)
        }
        return .copy
    }

    /// The points the plan copies if every copy succeeds, oldest first.
    var copies: [BackupPoint] {
        var plan = self
        var points: [BackupPoint] = []
        for point in candidates where plan.decision(for: point) == .copy {
            plan.copied(point)
            points.append(point)
        }
        return points
    }

    /// Records that `point` is in the target now.
    mutating func copied(_ point: BackupPoint) {
        targetManifests[point.id] = point.manifest
    }
}
