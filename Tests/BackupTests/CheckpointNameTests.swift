import Foundation
import Repository
import Testing

@testable import Backup

@Suite("Checkpoint names carry the repository's tag")
struct CheckpointNameTests {
    static func identity(_ id: String) throws -> RepositoryIdentity {
        try JSONDecoder().decode(RepositoryIdentity.self, from: Data(#"{"schema":1,"id":"\#(id)"}"#.utf8))
    }

    @Test("a point's checkpoint is pullback-<first 8 hex digits of the id>-<point id>")
    func forPoint() throws {
        let repository = try Self.identity("571db370-9c1e-4a55-8f0e-2b6c1d9e0f11")
        #expect(
            CheckpointName.forPoint("20261129T211528Z", of: repository) == "pullback-571db370-20261129T211528Z")
    }

    @Test("a repository recognises its own checkpoints only")
    func isMade() throws {
        let mine = try Self.identity("571db370-9c1e-4a55-8f0e-2b6c1d9e0f11")
        let other = try Self.identity("aa00bb11-0000-4000-8000-000000000000")
        let name = CheckpointName.forPoint("20261129T211528Z", of: mine)
        #expect(CheckpointName.isMade(name, by: mine))
        #expect(!CheckpointName.isMade(name, by: other))
        #expect(!CheckpointName.isMade("pullback-20261129T211528Z", by: mine))
        #expect(!CheckpointName.isMade("virtnbdbackup.0", by: mine))
        // Another repository whose tag starts like ours is not ours: the dash ends the tag.
        let longer = "pullback-571db3701-20261129T211528Z"
        #expect(!CheckpointName.isMade(longer, by: mine))
    }
}
