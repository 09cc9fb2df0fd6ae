import Backup
import Foundation
import Testing

@testable import PullbackCommands

@Suite("The summary of pullback checkpoints quotes the commands it suggests")
struct CheckpointsSummaryTests {
    static func report(domain: String) throws -> CheckpointReport {
        let json = """
            {"domain": \(String(decoding: try JSONEncoder().encode(domain), as: UTF8.self)), "others": 0,
             "checkpoints": [
              {"name": "pullback-0123abcd-1", "tag": "0123abcd", "repository": "/gone", "holds_point": "gone",
               "detail": "nothing is there"},
              {"name": "pullback-89abcdef-1", "tag": "89abcdef", "repository": "/live", "holds_point": "no"}]}
            """
        return try JSONDecoder().decode(CheckpointReport.self, from: Data(json.utf8))
    }

    @Test("a domain named with shell syntax is single-quoted in every suggested command")
    func quoted() throws {
        #expect(
            CheckpointsCommand.summary(try Self.report(domain: "evil$(touch PWNED)"))
                == "evil$(touch PWNED): 2 checkpoints made by pullback, 1 held by no point, 1 of a repository gone; if repository 0123abcd was deleted, not moved or unmounted, remove its checkpoints with `pullback checkpoints 'evil$(touch PWNED)' --remove --tag 0123abcd`; remove those held by no point with `pullback checkpoints 'evil$(touch PWNED)' --remove --repo DIR`"
        )
        #expect(
            CheckpointsCommand.summary(try Self.report(domain: "it's"))
                .contains("`pullback checkpoints 'it'\\''s' --remove --tag 0123abcd`"))
    }
}
