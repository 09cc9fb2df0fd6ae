import Foundation
import Repository
import TestSupport
import Testing

/// `repository.json`: made once, the same for every caller (also racing ones), moved with the repository, and
/// refused with a clear error when damaged.
@Suite struct RepositoryIdentityTests {
    func withRoot(_ body: (String) async throws -> Void) async throws {
        let directory = try TemporaryDirectory("pbid")
        defer { directory.remove() }
        try await body(directory.path)
    }

    @Test func theIdentityIsMadeOnceAndReadBackAfterAMove() async throws {
        try await withRoot { parent in
            let root = parent + "/repo"
            let made = try BackupRepository(root: root).identity()
            #expect(made.tag.count == 8 && made.tag.allSatisfy(\.isHexDigit), "\(made)")
            #expect(try BackupRepository(root: root).identity() == made)
            #expect(try FileManager.default.contentsOfDirectory(atPath: root) == ["repository.json"])
            // Not a domain.
            #expect(try BackupRepository(root: root).domainNames().isEmpty)

            try FileManager.default.moveItem(atPath: root, toPath: parent + "/moved")
            #expect(try BackupRepository(root: parent + "/moved").identity() == made)
            #expect(try BackupRepository(root: parent + "/other").identity() != made)
        }
    }

    @Test func racingCallersAgreeOnOneIdentity() async throws {
        try await withRoot { parent in
            let root = parent + "/repo"
            let identities = try await withThrowingTaskGroup(of: RepositoryIdentity.self) { group in
                for _ in 0..<16 {
                    group.addTask { try BackupRepository(root: root).identity() }
                }
                return try await group.reduce(into: [RepositoryIdentity]()) { $0.append($1) }
            }
            #expect(Set(identities.map(\.id)).count == 1, "\(identities)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: root) == ["repository.json"])
        }
    }

    @Test func aDamagedIdentityIsRefusedAndLeftAsItIs() async throws {
        try await withRoot { parent in
            let path = parent + "/repository.json"
            let damaged = Data("{\"schema\": 1, \"id\": \"zz\"}".utf8)
            try damaged.write(to: URL(fileURLWithPath: path))
            #expect {
                _ = try BackupRepository(root: parent).identity()
            } throws: { error in
                (error as? RepositoryError)?.code == .corrupt
                    && (error as? RepositoryError)?.message.contains("repository.json") == true
            }
            #expect(FileManager.default.contents(atPath: path) == damaged)
        }
    }
}
