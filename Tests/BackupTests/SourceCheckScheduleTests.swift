import Foundation
import Testing

@testable import Backup
@testable import Repository

/// When `--check-source-every N` checks: counted from the points' own records.
@Suite("Which backups check their source")
struct SourceCheckScheduleTests {
    /// Points oldest first, `true` where the point was checked.
    static func points(_ checked: [Bool]) -> [BackupPoint] {
        checked.enumerated().map { index, wasChecked in
            var manifest = BackupManifest(
                domainName: "web1", domainUUID: "5f1c3e0a-0000-4000-8000-000000000001", level: .full,
                checkpoint: "c\(index)", parent: nil, started: Date(timeIntervalSince1970: 1_800_000_000),
                finished: Date(timeIntervalSince1970: 1_800_000_060),
                disks: [
                    .init(target: "vda", virtualSize: 1 << 30, image: "vda.qcow2", backingImage: nil, bytesCopied: 0)
                ])
            manifest.sourceChecked = wasChecked ? true : nil
            return BackupPoint(id: "p\(index)", folder: "/nonexistent/p\(index)", manifest: manifest)
        }
    }

    @Test("every third backup: the first, then the one after two unchecked points")
    func everyThird() {
        var history: [Bool] = []
        for _ in 0..<7 {
            history.append(SourceCheckSchedule.isDue(every: 3, after: Self.points(history)))
        }
        #expect(history == [true, false, false, true, false, false, true])
    }

    @Test("1 checks every backup, nil never; a pruned history counts from what is left")
    func edges() {
        #expect(SourceCheckSchedule.isDue(every: 1, after: Self.points([true, true])))
        #expect(!SourceCheckSchedule.isDue(every: nil, after: Self.points([])))
        #expect(SourceCheckSchedule.isDue(every: 7, after: Self.points([false, false])), "never checked yet: now")
        #expect(!SourceCheckSchedule.isDue(every: 7, after: Self.points([true, false, false])))
        #expect(SourceCheckSchedule.isDue(every: 2, after: Self.points([true, false])))
    }
}
