import Foundation
import Testing

@testable import Backup
@testable import Repository

/// Which points a sync considers and what it does with each: only onto a base the target has with the same
/// manifest, so that a chain in the target is always whole.
@Suite("What sync copies, and onto what")
struct SyncPlanTests {
    /// Point `id` of `web1` based on `parent`, with checkpoint `checkpoint` (what tells two manifests apart here).
    static func point(_ id: String, _ parent: String?, checkpoint: String? = nil) -> BackupPoint {
        let manifest = BackupManifest(
            domainName: "web1", domainUUID: "5f1c3e0a-0000-4000-8000-000000000001",
            level: parent == nil ? .full : .incremental, checkpoint: checkpoint ?? "c-\(id)", parent: parent,
            started: Date(timeIntervalSince1970: 1_800_000_000), finished: Date(timeIntervalSince1970: 1_800_000_060),
            disks: [
                .init(
                    target: "vda", virtualSize: 1 << 30, image: "vda.qcow2",
                    backingImage: parent.map { "../\($0)/vda.qcow2" }, bytesCopied: 0)
            ])
        return BackupPoint(id: id, folder: "/nonexistent/\(id)", manifest: manifest)
    }

    /// Runs `plan` as the sync does, with the copies of `failing` failing, and returns each candidate's decision.
    static func run(_ plan: SyncPlan, failing: Set<String> = []) -> [String: SyncPlan.Decision] {
        var plan = plan
        var decisions: [String: SyncPlan.Decision] = [:]
        for point in plan.candidates {
            let decision = plan.decision(for: point)
            decisions[point.id] = decision
            if decision == .copy, !failing.contains(point.id) { plan.copied(point) }
        }
        return decisions
    }

    static let source = [point("a", nil), point("b", "a"), point("c", "b"), point("d", nil), point("e", "d")]

    @Test("all: the points the target lacks, oldest first; a failed copy takes its descendants, not the other chain")
    func all() {
        let plan = SyncPlan(source: Self.source, target: [Self.point("a", nil)], scope: .all)
        #expect(plan.candidates.map(\.id) == ["a", "b", "c", "d", "e"])
        #expect(plan.copies.map(\.id) == ["b", "c", "d", "e"])
        let decisions = Self.run(plan, failing: ["b"])
        #expect(decisions["a"] == .present && decisions["b"] == .copy && decisions["d"] == .copy)
        #expect(decisions["c"] == .dependent(on: "b", inSource: true) && decisions["e"] == .copy)
    }

    @Test("latest: the newest point and the part of its chain the target lacks, down to the first it has")
    func latest() {
        let chain = Array(Self.source.prefix(3))
        #expect(SyncPlan(source: chain, target: [], scope: .latest).candidates.map(\.id) == ["a", "b", "c"])
        let onA = SyncPlan(source: chain, target: [Self.point("a", nil)], scope: .latest)
        #expect(onA.candidates.map(\.id) == ["a", "b", "c"] && onA.copies.map(\.id) == ["b", "c"])
        #expect(SyncPlan(source: Self.source, target: [], scope: .latest).candidates.map(\.id) == ["d", "e"])
    }

    @Test("a target point with another manifest is a conflict, and nothing is copied onto it")
    func conflict() {
        let target = [Self.point("a", nil), Self.point("b", "a", checkpoint: "other")]
        for scope in [SyncRequest.Scope.all, .latest] {
            let decisions = Self.run(SyncPlan(source: Array(Self.source.prefix(3)), target: target, scope: scope))
            #expect(decisions["b"] == .conflict, "\(scope)")
            #expect(decisions["c"] == .dependent(on: "b", inSource: true), "\(scope)")
        }
    }

    @Test("a point whose parent neither side has is left out; one whose parent only the target has is copied")
    func missingParent() {
        let orphan = [Self.point("b", "a"), Self.point("c", "b")]
        let decisions = Self.run(SyncPlan(source: orphan, target: [], scope: .all))
        #expect(decisions["b"] == .dependent(on: "a", inSource: false))
        #expect(decisions["c"] == .dependent(on: "b", inSource: true))
        let pruned = Self.run(SyncPlan(source: orphan, target: [Self.point("a", nil)], scope: .all))
        #expect(pruned["b"] == .copy && pruned["c"] == .copy)
    }
}
