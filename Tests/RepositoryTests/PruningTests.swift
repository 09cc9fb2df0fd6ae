import Foundation
import TestSupport
import Testing

@testable import Repository

/// The repository side of `prune`: which points a rule keeps, the manifest's new optional fields, and the atomic
/// rewrite and removal of a point on a real file system.
@Suite struct PruningTests {
    let uuid = "5f1c3e0a-0000-4000-8000-000000000001"

    func manifest(
        parent: String? = nil, checkpoint: String, started: Date = Date(timeIntervalSince1970: 1_800_000_000)
    ) -> BackupManifest {
        BackupManifest(
            domainName: "web1", domainUUID: uuid, level: parent == nil ? .full : .incremental, checkpoint: checkpoint,
            parent: parent, started: started, finished: started.addingTimeInterval(60),
            disks: [
                .init(
                    target: "vda", virtualSize: 1 << 30, image: "vda.qcow2",
                    backingImage: parent.map { "../\($0)/vda.qcow2" }, bytesCopied: 4096)
            ])
    }

    func points(startedHoursAgo hours: [Double], now: Date) -> [BackupPoint] {
        hours.enumerated().map { index, ago in
            BackupPoint(
                id: "p\(index)", folder: "/nowhere/p\(index)",
                manifest: manifest(checkpoint: "c\(index)", started: now.addingTimeInterval(-ago * 3600)))
        }
    }

    @Test func durationsAreANumberAndAUnit() {
        #expect(RetentionRule.seconds(in: "30m") == 1800)
        #expect(RetentionRule.seconds(in: "12h") == 43_200)
        #expect(RetentionRule.seconds(in: "7d") == 604_800)
        #expect(RetentionRule.seconds(in: "2w") == 1_209_600)
        #expect(RetentionRule.seconds(in: "45s") == 45)
        for bad in ["", "d", "0d", "-1d", "+1d", "1.5d", "7", "7x", "7D", " 7d", "7d ", "1d2h", "٣d", "99999999999d"] {
            #expect(RetentionRule.seconds(in: bad) == nil, "\(bad)")
        }
        #expect(RetentionRule.seconds(in: "36600d") == RetentionRule.maximumSeconds)
        #expect(RetentionRule.seconds(in: "36601d") == nil)
    }

    @Test func aRuleKeepsTheNewestPointsAndAlwaysTheNewest() {
        let now = Date(timeIntervalSince1970: 1_900_000_000)
        let all = points(startedHoursAgo: [72, 48, 30, 20, 1], now: now)
        #expect(RetentionRule.newest(2).kept(all, now: now).map(\.id) == ["p3", "p4"])
        #expect(RetentionRule.newest(9).kept(all, now: now).map(\.id) == all.map(\.id))
        #expect(RetentionRule.within(seconds: 86_400).kept(all, now: now).map(\.id) == ["p3", "p4"])
        #expect(RetentionRule.within(seconds: 30 * 3600).kept(all, now: now).map(\.id) == ["p2", "p3", "p4"])
        // Nothing within a minute: the newest point is kept all the same.
        #expect(RetentionRule.within(seconds: 60).kept(all, now: now).map(\.id) == ["p4"])
        #expect(RetentionRule.newest(1).kept([], now: now).isEmpty)
    }

    @Test func newFieldsAreAbsentFromOldManifestsAndOldReadersIgnoreThem() throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let plain = try encoder.encode(manifest(checkpoint: "c"))
        let text = String(decoding: plain, as: UTF8.self)
        #expect(!text.contains("synthetic") && !text.contains("originalParent"), "\(text)")
        let decoded = try decoder.decode(BackupManifest.self, from: plain)
        #expect(decoded.synthetic == nil && decoded.originalParent == nil && !decoded.isSynthetic)

        var synthetic = manifest(checkpoint: "c")
        synthetic.synthetic = true
        synthetic.originalParent = "p1"
        try synthetic.validate(id: "p2", domain: "web1", file: "m")
        // A reader of the manifest as it was before these fields (the same keys less the two) reads a synthetic one.
        struct OldManifest: Decodable {
            var schemaVersion: Int
            var level: String
            var parent: String?
            var disks: [BackupManifest.Disk]
        }
        let old = try decoder.decode(OldManifest.self, from: encoder.encode(synthetic))
        #expect(old.level == "full" && old.parent == nil && old.disks.first?.backingImage == nil)

        var incremental = manifest(parent: "p1", checkpoint: "c")
        incremental.synthetic = true
        #expect(throws: RepositoryError.self) { try incremental.validate(id: "p2", domain: "web1", file: "m") }
        var stray = manifest(checkpoint: "c")
        stray.originalParent = "p1"
        #expect(throws: RepositoryError.self) { try stray.validate(id: "p2", domain: "web1", file: "m") }
        synthetic.originalParent = "../p1"
        #expect(throws: RepositoryError.self) { try synthetic.validate(id: "p2", domain: "web1", file: "m") }
    }

    @Test func aRewriteSwapsThePointAtOnceAndARemovalHidesItFirst() async throws {
        let directory = try TemporaryDirectory("pbprune")
        defer { directory.remove() }
        let repository = try BackupRepository.create(root: directory.path)
        let lock = try repository.lock("web1")
        let full = try await repository.withNewPoint(of: "web1", lock: lock, started: Date()) { pending in
            try Data([1]).write(to: URL(fileURLWithPath: pending.imagePath(for: "vda")))
            return manifest(checkpoint: "c1")
        }
        let incremental = try await repository.withNewPoint(of: "web1", lock: lock, started: Date()) { pending in
            try Data([2]).write(to: URL(fileURLWithPath: pending.imagePath(for: "vda")))
            try pending.write("<domain/>", to: "domain.xml")
            return manifest(parent: full.id, checkpoint: "c2")
        }

        let rewritten = try await repository.rewrite(incremental, of: "web1", lock: lock) { staging in
            // Until the swap, the listed point is the old one, and the staging folder is not listed.
            #expect(try repository.points(of: "web1") == [full, incremental])
            try Data([3]).write(to: URL(fileURLWithPath: staging.imagePath(for: "vda")))
            var made = incremental.manifest
            made.level = .full
            made.parent = nil
            made.synthetic = true
            made.originalParent = full.id
            made.disks[0].backingImage = nil
            return made
        }
        #expect(try repository.points(of: "web1") == [full, rewritten])
        #expect(rewritten.manifest.isSynthetic && rewritten.manifest.parent == nil)
        #expect(FileManager.default.contents(atPath: incremental.folder + "/vda.qcow2") == Data([3]))
        #expect(try rewritten.savedFile("domain.xml") == "<domain/>", "the saved XML is carried over")
        let names = try FileManager.default.contentsOfDirectory(atPath: repository.folder(of: "web1")).sorted()
        #expect(names == [".lock", full.id, incremental.id], "the old point is gone: \(names)")

        // A failed rewrite leaves the point as it was and no staging folder.
        struct Failure: Error {}
        await #expect(throws: Failure.self) {
            _ = try await repository.rewrite(rewritten, of: "web1", lock: lock) { _ in throw Failure() }
        }
        #expect(try repository.points(of: "web1") == [full, rewritten])

        try await repository.remove(full, of: "web1", lock: lock)
        #expect(try repository.points(of: "web1") == [rewritten])
        #expect(!FileManager.default.fileExists(atPath: full.folder))
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: repository.folder(of: "web1")).sorted()
                == [".lock", incremental.id])
    }

    @Test func whatAKilledPruneLeftIsNeverListedAndIsDiscarded() async throws {
        let directory = try TemporaryDirectory("pbprune")
        defer { directory.remove() }
        let repository = try BackupRepository.create(root: directory.path)
        let lock = try repository.lock("web1")
        let point = try await repository.withNewPoint(of: "web1", lock: lock, started: Date()) { _ in
            manifest(checkpoint: "c1")
        }
        let encoded = try JSONEncoder().encode(manifest(checkpoint: "c0"))
        for leftover in [point.id + ".rewrite.partial", "20200101T000000Z.removed.partial"] {
            let folder = repository.folder(of: "web1") + "/" + leftover
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
            try encoded.write(to: URL(fileURLWithPath: folder + "/manifest.json"))
        }
        #expect(try repository.points(of: "web1") == [point])
        try await repository.discardUnfinishedWork(of: "web1", lock: lock)
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: repository.folder(of: "web1")).sorted()
                == [".lock", point.id])
    }
}
