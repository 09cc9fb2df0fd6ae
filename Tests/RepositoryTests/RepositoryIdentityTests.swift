import Foundation
import Repository
import TestSupport
import Testing

/// `repository.json`: made once by `create`, the same for every reader, moved with the repository, and refused with a
/// clear error when damaged.
@Suite struct RepositoryIdentityTests {
    func withRoot(_ body: (String) async throws -> Void) async throws {
        try await TemporaryDirectory.with("pbid", body)
    }

    @Test func theIdentityIsMadeOnceAndReadBackAfterAMove() async throws {
        try await withRoot { parent in
            let root = parent + "/repo"
            let made = try BackupRepository.create(root: root).identity()
            #expect(made.tag.count == 8 && made.tag.allSatisfy(\.isHexDigit), "\(made)")
            #expect(try BackupRepository(root: root).identity() == made)
            #expect(try FileManager.default.contentsOfDirectory(atPath: root) == ["repository.json"])
            // Not a domain.
            #expect(try BackupRepository(root: root).domainNames().isEmpty)

            try FileManager.default.moveItem(atPath: root, toPath: parent + "/moved")
            #expect(try BackupRepository(root: parent + "/moved").identity() == made)
            #expect(try BackupRepository.create(root: parent + "/other").identity() != made)
        }
    }

    @Test func ofRacingCreatorsOneMakesTheRepositoryAndTheOthersAreTold() async throws {
        try await withRoot { (parent: String) async throws in
            let root = parent + "/repo"
            let outcomes = await withTaskGroup(of: Result<RepositoryIdentity, RepositoryError>.self) { group in
                for _ in 0..<16 {
                    group.addTask {
                        do throws(RepositoryError) {
                            return .success(try BackupRepository.create(root: root).identity())
                        } catch {
                            return .failure(error)
                        }
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            let made = outcomes.compactMap { try? $0.get() }
            #expect(made.count == 1, "\(outcomes)")
            for case .failure(let error) in outcomes {
                #expect(error.code == .alreadyARepository, "\(error)")
            }
            #expect(try BackupRepository.open(root: root).identity() == made.first)
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
