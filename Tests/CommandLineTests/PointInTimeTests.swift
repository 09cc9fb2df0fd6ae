import Foundation
import Testing

extension BackupIntegration {
    /// A backup is of one instant: the guest writes while pullback copies (pullback stopped with SIGSTOP once its
    /// pending point holds data, so that the writes surely land mid-copy), and the point still reads as the disk did
    /// when the job began; the next incremental carries those writes.
    @Suite("A point is the disk as the backup job began", .serialized)
    struct PointInTimeTests {
        @Test(
            "guest writes during a backup are kept out of its point and land in the next incremental",
            .timeLimit(.minutes(4)))
        func writesDuringBackup() async throws {
            try await LibvirtGuest.run(disks: [("vda", 512 * mib)], driver: .daemon) { _, guest in
                try await guest.write("vda", "write -P 0x71 0 1M")
                let (base, _) = try await BackupTests.backup(guest)
                try await guest.write("vda", "write -P 0x72 1M 300M", "write -P 0x73 400M 64k", "flush")
                let asBegun = try await guest.snapshot("as-begun")

                let child = try await BackupDisruptionTests.backupUnderWay(guest)
                let written = try await child.whileSuspended {
                    // Over data already copied (the start), data not yet copied (the end), and a hole.
                    try await guest.write(
                        "vda", "write -P 0x81 1M 2M", "write -P 0x82 290M 4M", "write -P 0x83 450M 64k", "flush")
                    return try await guest.snapshot("written")
                }
                let result = try await child.waitForExit(timeout: .seconds(120))
                try requireSuccess(result)
                let during = try BackupSummary.decode(result)
                #expect(during.level == "incremental" && during.parent == base.point, "\(during)")
                try await BackupTests.expectRestores(guest, at: during.point, matching: asBegun, label: "during")

                let (next, _) = try await BackupTests.backup(guest)
                #expect(next.level == "incremental" && next.parent == during.point, "\(next)")
                #expect(
                    (next.disk("vda")?.bytesRead ?? .max) < Int64(32 * mib),
                    "the next incremental reads only what changed: \(next)")
                try await BackupTests.expectRestores(guest, at: next.point, matching: written, label: "next")
            }
        }
    }
}
