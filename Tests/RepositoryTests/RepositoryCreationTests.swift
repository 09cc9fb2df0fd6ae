import Foundation
import Repository
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A repository is made only by `create`: opening, reading and locking a path that is not one refuse and make
/// nothing, a folder with files in it is never adopted, and a URL is no path.
@Suite struct RepositoryCreationTests {
    func withParent(_ body: (String) async throws -> Void) async throws {
        try await TemporaryDirectory.with("pbcreate", body)
    }

    @Test func createMakesAPrivateRepositoryOnce() async throws {
        try await withParent { parent in
            let root = parent + "/a/b/repo/"
            let made = try BackupRepository.create(root: root)
            #expect(FileFacts.mode(parent + "/a") == 0o700 && FileFacts.mode(parent + "/a/b/repo") == 0o700)
            #expect(FileFacts.mode(parent + "/a/b/repo/repository.json") == 0o600)
            let identity = try made.identity()
            let again = #expect(throws: RepositoryError.self) { _ = try BackupRepository.create(root: root) }
            #expect(again?.code == .alreadyARepository)
            #expect(try BackupRepository.open(root: root).identity() == identity)
            #expect(try BackupRepository.openOrCreate(root: root).identity() == identity)
        }
    }

    @Test func nothingButCreateMakesARepository() async throws {
        try await withParent { parent in
            let root = parent + "/typo"
            let repository = BackupRepository(root: root)
            let opened = #expect(throws: RepositoryError.self) { _ = try BackupRepository.open(root: root) }
            #expect(opened?.code == .notARepository && opened?.message.contains("pullback init") == true)
            let locked = #expect(throws: RepositoryError.self) { _ = try repository.lock("web1") }
            #expect(locked?.code == .notARepository)
            #expect(throws: RepositoryError.self) { _ = try repository.identity() }
            #expect(throws: RepositoryError.self) { _ = try repository.points(of: "web1") }
            #expect(!FileManager.default.fileExists(atPath: root), "a repository was made")
        }
    }

    @Test func aFolderWithFilesIsNeverAdopted() async throws {
        try await withParent { parent in
            let root = parent + "/documents"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: false)
            try Data("mine".utf8).write(to: URL(fileURLWithPath: root + "/notes.txt"))
            let makers: [(String) throws -> BackupRepository] = [
                { try BackupRepository.create(root: $0) }, { try BackupRepository.openOrCreate(root: $0) },
            ]
            for make in makers {
                let error = #expect(throws: RepositoryError.self) { _ = try make(root) }
                #expect(error?.code == .notARepository, "\(String(describing: error))")
            }
            #expect(throws: RepositoryError.self) { _ = try BackupRepository(root: root).lock("web1") }
            #expect(try FileManager.default.contentsOfDirectory(atPath: root) == ["notes.txt"])
        }
    }

    @Test(arguments: ["sftp://host/x", "file:///srv/backups", "S3+x.y-z://b"])
    func aURLIsNoRepository(url: String) async throws {
        let attempts: [(String) throws -> BackupRepository] = [
            { try BackupRepository.create(root: $0) }, { try BackupRepository.open(root: $0) },
            { try BackupRepository.openOrCreate(root: $0) },
        ]
        for attempt in attempts {
            let error = #expect(throws: RepositoryError.self) { _ = try attempt(url) }
            #expect(error?.code == .unsupportedLocation && error?.message.contains(url) == true)
        }
        #expect(throws: RepositoryError.self) { _ = try BackupRepository(root: url).domainNames() }
        #expect(!FileManager.default.fileExists(atPath: String(url.prefix { $0 != "/" })), "a folder was made")
    }

    @Test func pathsWithAColonAreStillPaths() async throws {
        try await withParent { parent in
            for name in ["backups:2026", "a:b/c", "1s3://x"] {
                let root = parent + "/" + name
                _ = try BackupRepository.create(root: root)
                #expect(try BackupRepository.open(root: root).domainNames().isEmpty)
            }
        }
    }

    @Test func tighteningCoversTheRootAndItsIdentity() async throws {
        try await withParent { parent in
            let root = parent + "/repo"
            let repository = try BackupRepository.create(root: root)
            let lock = try repository.lock("web1")
            #expect(chmod(root, 0o755) == 0 && chmod(root + "/repository.json", 0o644) == 0)
            let tightened = repository.tightenPermissions(of: "web1", lock: lock)
            #expect(tightened.count == 2, "\(tightened)")
            #expect(FileFacts.mode(root) == 0o700 && FileFacts.mode(root + "/repository.json") == 0o600)
        }
    }
}
