import Foundation
import Repository
import TestSupport
import Testing

/// The repository on a real file system: commit by rename, rollback, stale partial folders, locking.
@Suite struct BackupRepositoryTests {
    /// A fresh repository root, removed at the end of the test.
    func withRoot(_ body: (String) async throws -> Void) async throws {
        let directory = try TemporaryDirectory("pbrepo")
        defer { directory.remove() }
        _ = try BackupRepository.create(root: directory.path)  // readers refuse a folder without repository.json
        try await body(directory.path)
    }

    func manifest(level: BackupManifest.Level = .full, parent: String? = nil, checkpoint: String) -> BackupManifest {
        BackupManifest(
            domainName: "web1", domainUUID: "5f1c3e0a-0000-4000-8000-000000000001", level: level,
            checkpoint: checkpoint, parent: parent, started: Date(timeIntervalSince1970: 1_800_000_000),
            finished: Date(timeIntervalSince1970: 1_800_000_060),
            disks: [
                .init(
                    target: "vda", virtualSize: 1 << 30, image: "vda.qcow2",
                    backingImage: parent.map { "../\($0)/vda.qcow2" }, bytesCopied: 4096)
            ])
    }

    @Test func aCommittedPointIsListedWithItsFilesAndNothingPartialRemains() async throws {
        try await withRoot { root in
            let repository = BackupRepository(root: root)
            let lock = try repository.lock("web1")
            let expected = manifest(checkpoint: "pullback-1")
            let point = try await repository.withNewPoint(of: "web1", lock: lock, started: Date()) { pending in
                #expect(pending.folder.hasSuffix(".partial"))
                #expect(try repository.points(of: "web1").isEmpty, "a pending point must not be listed")
                try Data([1, 2, 3]).write(to: URL(fileURLWithPath: pending.imagePath(for: "vda")))
                try pending.write("<domain/>", to: "domain.xml")
                return expected
            }
            let listed = try repository.points(of: "web1")
            #expect(listed == [point])
            #expect(listed.first?.manifest == expected)
            let files = try FileManager.default.contentsOfDirectory(atPath: point.folder).sorted()
            #expect(files == ["domain.xml", "manifest.json", "vda.qcow2"])
            #expect(FileManager.default.contents(atPath: point.imagePath(for: "vda") ?? "") == Data([1, 2, 3]))
            let domainFolder = try FileManager.default.contentsOfDirectory(atPath: repository.folder(of: "web1"))
            #expect(domainFolder.filter { $0.hasSuffix(".partial") }.isEmpty)
        }
    }

    struct Failure: Error {}

    @Test func aFailedPointLeavesNothing() async throws {
        try await withRoot { root in
            let repository = BackupRepository(root: root)
            let lock = try repository.lock("web1")
            await #expect(throws: Failure.self) {
                _ = try await repository.withNewPoint(of: "web1", lock: lock, started: Date()) { pending in
                    try Data([9]).write(to: URL(fileURLWithPath: pending.imagePath(for: "vda")))
                    throw Failure()
                }
            }
            #expect(try repository.points(of: "web1").isEmpty)
            let left = try FileManager.default.contentsOfDirectory(atPath: repository.folder(of: "web1"))
            #expect(left == [".lock"])
        }
    }

    @Test func aKilledRunsPartialFolderIsNeverListedAndIsRemovedByTheNextRun() async throws {
        try await withRoot { root in
            let repository = BackupRepository(root: root)
            let stale = repository.folder(of: "web1") + "/20260101T000000Z.partial"
            try FileManager.default.createDirectory(atPath: stale, withIntermediateDirectories: true)
            let encoded = try JSONEncoder().encode(manifest(checkpoint: "stale"))
            try encoded.write(to: URL(fileURLWithPath: stale + "/manifest.json"))
            #expect(try repository.points(of: "web1").isEmpty)

            let lock = try repository.lock("web1")
            _ = try await repository.withNewPoint(of: "web1", lock: lock, started: Date()) { _ in
                manifest(checkpoint: "pullback-1")
            }
            #expect(!FileManager.default.fileExists(atPath: stale))
            #expect(try repository.points(of: "web1").map(\.manifest.checkpoint) == ["pullback-1"])
        }
    }

    @Test func aSecondLockOnTheSameDomainIsRefusedUntilTheFirstEnds() async throws {
        try await withRoot { root in
            let repository = BackupRepository(root: root)
            do {
                let first = try repository.lock("web1")
                let error = #expect(throws: RepositoryError.self) { _ = try repository.lock("web1") }
                #expect(error?.code == .locked)
                #expect(error?.message.contains("\(getpid())") == true, "the message names the holder")
                _ = try repository.lock("db2")  // other domains are independent
                _ = first
            }
            _ = try repository.lock("web1")  // released when the first lock ended
        }
    }

    @Test func pointsAreFoundByIdOrLatestAndUnknownIdsAreNamed() async throws {
        try await withRoot { root in
            let repository = BackupRepository(root: root)
            let empty = #expect(throws: RepositoryError.self) { _ = try repository.point("latest", of: "web1") }
            #expect(empty?.code == .notFound)

            let lock = try repository.lock("web1")
            let when = Date(timeIntervalSince1970: 1_800_000_000)
            let full = try await repository.withNewPoint(of: "web1", lock: lock, started: when) { _ in
                manifest(checkpoint: "pullback-1")
            }
            let incremental = try await repository.withNewPoint(of: "web1", lock: lock, started: when) { _ in
                manifest(level: .incremental, parent: full.id, checkpoint: "pullback-2")
            }
            #expect(full.id == "20270115T080000Z")
            #expect(incremental.id == "20270115T080000Z-2", "two points in one second get distinct ids")
            #expect(try repository.points(of: "web1").map(\.id) == [full.id, incremental.id])
            #expect(try repository.point("latest", of: "web1") == incremental)
            #expect(try repository.point(full.id, of: "web1") == full)
            let unknown = #expect(throws: RepositoryError.self) {
                _ = try repository.point("19990101T000000Z", of: "web1")
            }
            #expect(unknown?.message.contains(full.id) == true, "the message lists the points there are")
        }
    }

    @Test func aMovedRepositoryListsTheSamePoints() async throws {
        try await withRoot { root in
            let original = root + "/a"
            let repository = try BackupRepository.create(root: original)
            let lock = try repository.lock("web1")
            let point = try await repository.withNewPoint(of: "web1", lock: lock, started: Date()) { _ in
                manifest(checkpoint: "pullback-1")
            }
            _ = consume lock
            try FileManager.default.moveItem(atPath: original, toPath: root + "/b")
            let moved = try BackupRepository(root: root + "/b").points(of: "web1")
            #expect(moved.map(\.id) == [point.id])
            #expect(moved.first?.manifest == point.manifest)
        }
    }

    @Test func aManifestFromALaterSchemaIsRefused() async throws {
        try await withRoot { root in
            let repository = BackupRepository(root: root)
            let folder = repository.folder(of: "web1") + "/20270115T080000Z"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            var future = manifest(checkpoint: "x")
            future.schemaVersion = BackupManifest.currentSchemaVersion + 1
            let encoder = JSONEncoder()
            encoder.dateEncodingStrategy = .iso8601
            try encoder.encode(future).write(to: URL(fileURLWithPath: folder + "/manifest.json"))
            let error = #expect(throws: RepositoryError.self) { _ = try repository.points(of: "web1") }
            #expect(error?.code == .corrupt)
        }
    }
}
