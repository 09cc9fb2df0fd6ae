import Foundation
import Repository
import Storage
import SystemPackage
import TestSupport
import Testing

/// The repository over its store: byte-for-byte the folder layout of earlier versions, listings that fail loudly,
/// and the one rulebook of image paths.
@Suite struct RepositoryStoreTests {
    func withRepository(_ body: (BackupRepository, String) async throws -> Void) async throws {
        let directory = try TemporaryDirectory("pbseam")
        defer { directory.remove() }
        let repository = try BackupRepository.create(root: directory.path + "/repo")
        try await body(repository, directory.path + "/repo")
    }

    func manifest(parent: String? = nil, checkpoint: String) -> BackupManifest {
        BackupManifest(
            domainName: "web1", domainUUID: "5f1c3e0a-0000-4000-8000-000000000001",
            level: parent == nil ? .full : .incremental, checkpoint: checkpoint, parent: parent,
            started: Date(timeIntervalSince1970: 1_800_000_000), finished: Date(timeIntervalSince1970: 1_800_000_060),
            disks: [
                .init(
                    target: "vda", virtualSize: 1 << 20, image: "vda.qcow2",
                    backingImage: parent.map { "../\($0)/vda.qcow2" }, bytesCopied: 4096)
            ])
    }

    /// Every path under `root`, relative, sorted, with `/` after folders.
    func tree(_ root: String) throws -> [String] {
        let enumerator = try #require(FileManager.default.enumerator(atPath: root))
        return enumerator.compactMap { $0 as? String }.map { path in
            var isFolder: ObjCBool = false
            FileManager.default.fileExists(atPath: root + "/" + path, isDirectory: &isFolder)
            return isFolder.boolValue ? path + "/" : path
        }.sorted()
    }

    @Test func pointsKeepTheLayoutOfEarlierVersionsByteForByte() async throws {
        try await withRepository { repository, root in
            let lock = try repository.lock("web1")
            let when = Date(timeIntervalSince1970: 1_800_000_000)
            let full = try await repository.withNewPoint(of: "web1", lock: lock, started: when) { pending in
                #expect(pending.folder == root + "/web1/20270115T080000Z.partial")
                #expect(pending.imagePath(for: "vda") == root + "/web1/20270115T080000Z.partial/vda.qcow2")
                try Data([1, 2]).write(to: URL(fileURLWithPath: pending.imagePath(for: "vda")))
                try pending.write("<domain/>", to: "domain.xml")
                try pending.writeFile([9, 9], to: "vda.blocks")
                return manifest(checkpoint: "pullback-1")
            }
            #expect(full.folder == root + "/web1/20270115T080000Z")
            #expect(
                try tree(root) == [
                    "repository.json", "web1/", "web1/.lock", "web1/20270115T080000Z/",
                    "web1/20270115T080000Z/domain.xml", "web1/20270115T080000Z/manifest.json",
                    "web1/20270115T080000Z/vda.blocks", "web1/20270115T080000Z/vda.qcow2",
                ])
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            encoder.dateEncodingStrategy = .iso8601
            #expect(
                try Data(contentsOf: URL(fileURLWithPath: full.folder + "/manifest.json"))
                    == encoder.encode(manifest(checkpoint: "pullback-1")))
            #expect(try full.savedFile("domain.xml") == "<domain/>")
            #expect(try full.file("vda.blocks", limit: 10) == [9, 9])
        }
    }

    @Test func anUnreadableDomainFolderIsAnErrorWithItsErrnoNeverAnEmptyList() async throws {
        guard getuid() != 0 else { return }  // root reads every folder
        try await withRepository { repository, root in
            let lock = try repository.lock("web1")
            _ = try await repository.withNewPoint(of: "web1", lock: lock, started: Date()) { _ in
                manifest(checkpoint: "pullback-1")
            }
            chmod(root + "/web1", 0o300)
            defer { chmod(root + "/web1", 0o700) }
            let listing = #expect(throws: RepositoryError.self) { _ = try repository.points(of: "web1") }
            #expect(listing?.cause as? Errno == .permissionDenied, "\(String(describing: listing))")
            #expect(listing?.message.contains(root + "/web1") == true)
            let records = #expect(throws: RepositoryError.self) {
                _ = try repository.jobRecords(of: "web1", lock: lock)
            }
            #expect(records?.cause as? Errno == .permissionDenied, "\(String(describing: records))")
        }
    }

    @Test func theRepositoryNamesEveryImageOfAChain() async throws {
        try await withRepository { repository, root in
            let lock = try repository.lock("web1")
            var points: [BackupPoint] = []
            for index in 0..<3 {
                let parent = points.last?.id
                points.append(
                    try await repository.withNewPoint(
                        of: "web1", lock: lock, started: Date(timeIntervalSince1970: 1_800_000_000 + Double(index))
                    ) { _ in manifest(parent: parent, checkpoint: "pullback-\(index)") })
            }
            let listed = try repository.points(of: "web1")
            let layers = try repository.imageLayers(of: "vda", at: listed[2], among: listed, domain: "web1")
            #expect(layers.map(\.path) == listed.reversed().map { root + "/web1/" + $0.id + "/vda.qcow2" })
            #expect(layers.map(\.backingName) == ["../\(listed[1].id)/vda.qcow2", "../\(listed[0].id)/vda.qcow2", nil])
            let located = try BackupRepository.containing(listed[2])
            #expect(located.repository.root == root && located.domain == "web1")
            let missing = #expect(throws: RepositoryError.self) {
                _ = try repository.imageLayers(of: "vdb", at: listed[2], among: listed, domain: "web1")
            }
            #expect(missing?.code == .notFound)
        }
    }

    @Test func allocatedBytesAreTheBlocksOfThePointsFiles() async throws {
        try await withRepository { repository, _ in
            let lock = try repository.lock("web1")
            let point = try await repository.withNewPoint(of: "web1", lock: lock, started: Date()) { pending in
                try Data(repeating: 7, count: 100_000).write(to: URL(fileURLWithPath: pending.imagePath(for: "vda")))
                return manifest(checkpoint: "pullback-1")
            }
            var expected: UInt64 = 0
            for name in try FileManager.default.contentsOfDirectory(atPath: point.folder) {
                var status = stat()
                #expect(lstat(point.folder + "/" + name, &status) == 0)
                expected += UInt64(status.st_blocks) * 512
            }
            #expect(expected > 100_000)
            #expect(repository.allocatedBytes(of: point) == expected)
        }
    }

    @Test func aKilledWritersTemporaryFileIsRemovedWithThePartialFolders() async throws {
        try await withRepository { repository, root in
            let lock = try repository.lock("web1")
            let leftovers = ["..job-20270115T080000Z.json.0123abcd.tmp", "20270115T080000Z.partial"]
            FileManager.default.createFile(atPath: root + "/web1/" + leftovers[0], contents: Data([1]))
            try FileManager.default.createDirectory(
                atPath: root + "/web1/" + leftovers[1], withIntermediateDirectories: false)
            try await repository.discardUnfinishedWork(of: "web1", lock: lock)
            #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/web1") == [".lock"])
        }
    }

    @Test func aDomainFolderThatIsALinkIsAnErrorForEveryListingNeverAnEmptyOne() async throws {
        try await withRepository { repository, root in
            let lock = try repository.lock("web1")
            let elsewhere = root + "/../elsewhere"
            try FileManager.default.createDirectory(atPath: elsewhere, withIntermediateDirectories: false)
            try FileManager.default.moveItem(atPath: root + "/web1", toPath: root + "/web1-real")
            try FileManager.default.createSymbolicLink(atPath: root + "/web1", withDestinationPath: elsewhere)
            let records = #expect(throws: RepositoryError.self) {
                _ = try repository.jobRecords(of: "web1", lock: lock)
            }
            #expect(records?.code == .corrupt)
            #expect(
                records?.message.contains(root + "/web1 is a symbolic link") == true, "\(String(describing: records))")
            let points = #expect(throws: RepositoryError.self) { _ = try repository.points(of: "web1") }
            #expect(points?.code == .corrupt)
        }
    }
}
