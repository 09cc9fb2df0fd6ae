import Foundation
import Testing

/// The rate every `--limit-rate` test asks for, and the bytes per second it allows with a margin for rounding.
private enum LimitedRate {
    static let argument = "8M"
    static let bytesPerSecond = Double(8 * mib)
    static let ceiling = bytesPerSecond * 1.1
    /// The least time reading `bytes` at the rate can take, less a margin.
    static func leastSeconds(for bytes: Int64) -> Double { Double(bytes) / bytesPerSecond * 0.8 }
}

extension CopyIntegration {
    /// `--limit-rate RATE`: the bytes a copy reads stay under RATE per second on average, the copy being exact; a rate
    /// that is not one is an argument error of every command that takes it.
    @Suite("--limit-rate on copy", .serialized)
    struct RateLimitedCopyTests {
        @Test(
            "copy --limit-rate 8M of 32 MiB of data reads under 8 MiB/s (10% margin) and is identical",
            .timeLimit(.minutes(2)))
        func limitedCopy() async throws {
            try await Fixture.run { fx in
                let image = try await QCOW2Image.create(fx, size: 32 * mib)
                try await image.io("write -P 0x5a 0 16M", "write -P 0xa5 16M 16M")
                let server = try await image.serve()
                let target = fx.target()

                let result = try await Pullback.copy(
                    fx, [server.uri(), target, "--limit-rate", LimitedRate.argument, "--json"])
                try requireSuccess(result)
                server.stop()

                try await expectMatches(fx, target: target, image: image)
                let stats = try CopyStats.decode(stdout: result.stdout)
                #expect(stats.bytesRead == Int64(32 * mib), "not all the data was read: \(stats)")
                let rate = Double(stats.bytesRead) / stats.seconds
                #expect(rate <= LimitedRate.ceiling, "read \(rate) bytes/s, over the limit: \(stats)")
                #expect(stats.seconds >= LimitedRate.leastSeconds(for: stats.bytesRead), "\(stats)")
            }
        }

        @Test(
            "--limit-rate 0 or abc is one line naming the option, exit 64, for copy, backup, restore and sync",
            .timeLimit(.minutes(1)), arguments: ["0", "abc"])
        func badRate(value: String) async throws {
            try await Fixture.run { fx in
                let binary = try Pullback.binaryPath()
                let (repo, target) = (fx.path("repo"), fx.target())
                let commands: [[String]] = [
                    ["copy", "nbd://localhost/x", target],
                    ["backup", "web1", "--repo", repo],
                    ["restore", "--repo", repo, "web1", "--to", target],
                    ["sync", "--from", repo, "--to", fx.path("other")],
                ]
                for command in commands {
                    let result = try await fx.run([binary] + command + ["--limit-rate", value])
                    let lines = result.stderr.split(separator: "\n")
                    #expect(result.signal == nil && result.exitCode == 64, "\(command[0]): \(result)")
                    // The value is refused, not the option unknown.
                    let refused = lines.first.map { $0.contains("'\(value)' is invalid for '--limit-rate") } ?? false
                    #expect(lines.count == 1 && refused, "\(command[0]): \(result)")
                    #expect(result.stdout.isEmpty, "\(command[0]): \(result)")
                }
                #expect(!FileFacts.exists(repo) && !FileFacts.exists(target) && !FileFacts.exists(fx.path("other")))
            }
        }
    }
}

extension BackupIntegration {
    /// `--limit-rate` on the commands that read a guest's disks or a repository: backup, restore and sync go through
    /// the same limiter, their results are exact, and none reads faster than the rate.
    @Suite("--limit-rate on backup, restore and sync (embedded libvirt)", .serialized)
    struct RateLimitedRepositoryTests {
        @Test(
            "backup, restore and sync with --limit-rate 8M read under 8 MiB/s; the restore equals the disks, the sync copies the point",
            .timeLimit(.minutes(3)))
        func limitedBackupRestoreSync() async throws {
            try await LibvirtGuest.run(disks: [("vda", 32 * mib)]) { fx, guest in
                try await guest.write("vda", "write -P 0x5a 0 12M", "write -P 0x3c 20M 4M")
                let (full, _) = try await BackupTests.backup(guest, ["--limit-rate", LimitedRate.argument])
                let snapshot = try await guest.snapshot("full")
                let read = full.disks.reduce(0) { $0 + $1.bytesRead }
                #expect(read >= Int64(16 * mib), "\(full)")
                #expect(Double(read) / full.seconds <= LimitedRate.ceiling, "backup over the limit: \(full)")
                #expect(full.seconds >= LimitedRate.leastSeconds(for: read), "\(full)")

                // restore and sync report no time: it is measured here, against the bytes their results hold.
                let folder = fx.target("restored")
                let (restore, restoreSeconds) = try await Self.timed(
                    guest,
                    [
                        "restore", "--repo", guest.repo, guest.name, "--at", full.point, "--to", folder, "--format",
                        "raw",
                        "--limit-rate", LimitedRate.argument,
                    ])
                try requireSuccess(restore)
                try await expectSameBytes(fx, "\(folder)/vda.raw", snapshot["vda"]!)
                let written = try FileFacts.allocated("\(folder)/vda.raw")
                #expect(written >= Int64(16 * mib), "the restore holds less than the data: \(written)")
                #expect(restoreSeconds >= LimitedRate.leastSeconds(for: written), "restore took \(restoreSeconds) s")

                let copy = fx.path("copy")
                let (sync, syncSeconds) = try await Self.timed(
                    guest,
                    [
                        "sync", "--from", guest.repo, "--to", copy, "--init", "--json", "--limit-rate",
                        LimitedRate.argument,
                    ])
                try requireSuccess(sync)
                let domain = try CopyIntegration.SyncTests.domain(sync)
                #expect(domain.copied == [full.point], "\(sync)")
                try await CopyIntegration.SyncTests.expectSameFiles(guest, full.point, in: copy)
                #expect(domain.bytes >= UInt64(16 * mib), "\(sync)")
                #expect(syncSeconds >= LimitedRate.leastSeconds(for: Int64(domain.bytes)), "sync took \(syncSeconds) s")
            }
        }

        /// `pullback ARGUMENTS` for `guest`, and the seconds it took.
        static func timed(_ guest: LibvirtGuest, _ arguments: [String]) async throws -> (CommandResult, Double) {
            let clock = ContinuousClock()
            let started = clock.now
            let result = try await guest.pullback(arguments)
            let elapsed = (clock.now - started).components
            return (result, Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18)
        }
    }
}
