import Foundation
import TestSupport
import Testing

@testable import Backup
@testable import Repository

/// Which points a prune merges and in which order it removes them, for chains that are not one straight line: a full
/// point in the middle (`--level full`, or a fallback to full), and points based on one that is not kept.
@Suite("What prune keeps, merges and removes")
struct PrunePlanTests {
    /// Points `(id, parent)` of `web1`, oldest first, with folders under a fresh temporary domain folder (a chain is
    /// checked against real folders).
    static func withPoints(
        _ specs: [(String, String?)], _ body: ([BackupPoint], String) throws -> Void
    ) throws {
        let directory = try TemporaryDirectory("pbplan")
        defer { directory.remove() }
        let domainFolder = directory.file("web1")
        let points = try specs.map { id, parent in
            try FileManager.default.createDirectory(
                atPath: domainFolder + "/" + id, withIntermediateDirectories: true)
            let manifest = BackupManifest(
                domainName: "web1", domainUUID: "5f1c3e0a-0000-4000-8000-000000000001",
                level: parent == nil ? .full : .incremental, checkpoint: "c-\(id)", parent: parent,
                started: Date(timeIntervalSince1970: 1_800_000_000),
                finished: Date(timeIntervalSince1970: 1_800_000_060),
                disks: [
                    .init(
                        target: "vda", virtualSize: 1 << 30, image: "vda.qcow2",
                        backingImage: parent.map { "../\($0)/vda.qcow2" }, bytesCopied: 0)
                ])
            return BackupPoint(id: id, folder: domainFolder + "/" + id, manifest: manifest)
        }
        try body(points, domainFolder)
    }

    static func plan(_ points: [BackupPoint], keep: Int, in folder: String) throws -> PrunePlan {
        try PrunePlan.make(points, rule: .newest(keep), now: Date(), domain: "web1", in: folder)
    }

    @Test("a full point in the middle: nothing is merged above it, and each point goes before its parent")
    func fullInTheMiddle() throws {
        try Self.withPoints([("a", nil), ("b", "a"), ("c", nil), ("d", "c")]) { points, folder in
            let two = try Self.plan(points, keep: 2, in: folder)
            #expect(two.kept.map(\.id) == ["c", "d"] && two.merged.isEmpty && two.removed.map(\.id) == ["a", "b"])
            #expect(PrunePlan.nextRemovable(two.removed, listed: points)?.id == "b")
            #expect(
                PrunePlan.nextRemovable(two.removed.filter { $0.id != "b" }, listed: points.filter { $0.id != "b" })?.id
                    == "a")

            let three = try Self.plan(points, keep: 3, in: folder)
            #expect(three.kept.map(\.id) == ["b", "c", "d"] && three.merged.map(\.id) == ["b"])
            // Before b is rewritten, a is still its parent and cannot go.
            #expect(PrunePlan.nextRemovable(three.removed, listed: points) == nil)
        }
    }

    @Test("a kept point based on a missing one is refused before anything is planned")
    func missingParent() throws {
        try Self.withPoints([("b", "a"), ("c", "b")]) { points, folder in
            let error = #expect(throws: BackupError.self) { try Self.plan(points, keep: 1, in: folder) }
            #expect(error?.code == .repository && error?.message.contains("not in the repository") == true)
        }
    }
}
