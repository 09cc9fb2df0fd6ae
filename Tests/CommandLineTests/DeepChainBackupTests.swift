import Foundation
import Testing

extension BackupIntegration {
    /// Daily backups without prune: a chain past the 64 points the reader once opened goes on, restores at its start,
    /// middle and end, and `--max-chain` starts a new chain with a full.
    @Suite("backup chains of many points", .serialized)
    struct DeepChainBackupTests {
        /// Points made in a row, far past the 64 the reader once opened, and enough that the newest image's backing
        /// path joined from `../<id>/` names (20 bytes a point) passes PATH_MAX (4,096 bytes, about 205 points) unless
        /// the reader shortens it; an incremental of this guest takes about 0.5 s.
        static let points = 240

        @Test(
            "240 points of a small guest restore identical at the 1st, 120th and 240th, and --max-chain starts a new chain",
            .timeLimit(.minutes(10)))
        func manyPoints() async throws {
            // Under a private libvirtd: each round's virsh and pullback connect to it, where under the embedded driver
            // each would load the whole QEMU driver and reconnect to the guest first. The chain is the same either way.
            try await LibvirtGuest.run(disks: [("vda", 8 * mib)], driver: .daemon) { fx, guest in
                var snapshots: [Int: (point: String, files: [String: String])] = [:]
                var previous: String?
                for index in 1...Self.points {
                    try await guest.write("vda", "write -P \(index % 250 + 1) \(index * 7919 % 128 * 64)k 4k")
                    let (summary, _) = try await BackupTests.backup(guest, ["--max-chain", "400"])
                    #expect(summary.level == (index == 1 ? "full" : "incremental"), "point \(index): \(summary)")
                    #expect(summary.parent == previous, "point \(index): \(summary)")
                    previous = summary.point
                    if [1, Self.points / 2, Self.points].contains(index) {
                        snapshots[index] = (summary.point, try await guest.snapshot("\(index)"))
                    }
                }
                for (index, snapshot) in snapshots.sorted(by: { $0.key < $1.key }) {
                    try await BackupTests.expectRestores(
                        guest, at: snapshot.point, matching: snapshot.files, label: "point\(index)")
                }
                let verify = try await guest.pullback(["verify", "--repo", guest.repo, guest.name, "--at", "latest"])
                try requireSuccess(verify)

                // The chain is as long as --max-chain allows: auto starts again with a full, and says why.
                try await guest.write("vda", "write -P 0xee 0 4k")
                let (restart, result) = try await BackupTests.backup(guest, ["--max-chain", "\(Self.points)"])
                #expect(restart.level == "full" && restart.parent == nil, "\(restart)")
                #expect(restart.reason.contains("--max-chain"), "\(restart)")
                #expect(result.stderr.contains("--max-chain"), "\(result.stderr)")
                let last = try await guest.snapshot("restart")
                try await BackupTests.expectRestores(guest, at: restart.point, matching: last, label: "restart")
                let (next, _) = try await BackupTests.backup(guest, ["--max-chain", "\(Self.points)"])
                #expect(next.level == "incremental" && next.parent == restart.point, "\(next)")

                // Out of range is refused before anything is made.
                let refused = try await guest.backup(["--max-chain", "0"])
                #expect(!refused.succeeded && refused.stderr.contains("from 1 to"), "\(refused)")
                #expect(try await guest.list().count == Self.points + 2)
                _ = fx
            }
        }
    }
}
