import Foundation
import Testing

extension CopyIntegration {
    /// No silent partial backups: a disk left out without being asked for (a raw disk under the default policy) is
    /// named on stderr even under `--quiet`, listed in `--json` and by `list` and `restore`, and the backup exits 3;
    /// disks left out on purpose exit 0; `--disk` and `--exclude` naming a disk the domain does not have are refused
    /// before anything is made.
    @Suite("Partial backups: missing disks exit 3 and are named (embedded libvirt)", .serialized)
    struct PartialBackupTests {
        static let rawReason = "its format is raw, and only qcow2 disks keep the bitmaps incremental backups need"

        /// The fields of `backup --json` about left-out disks.
        struct Outcome: Decodable {
            struct LeftOut: Decodable, Equatable {
                let target: String
                let reason: String
            }
            struct Disk: Decodable {
                let target: String
            }
            let point: String
            let disks: [Disk]
            let skipped: [LeftOut]
            let missing: [LeftOut]
        }

        /// One element of `list --json`, with what the point lacks.
        struct Listed: Decodable {
            let id: String
            let disks: [String]
            let lacks: [String]?
        }

        /// A qcow2 vda and a raw vdb, small, each with some data.
        static func withGuest(_ body: (Fixture, LibvirtGuest) async throws -> Void) async throws {
            try await LibvirtGuest.run(disks: [("vda", 16 * mib), ("vdb", 8 * mib)], rawDisks: ["vdb"]) { fx, guest in
                try await guest.write("vda", "write -P 0x61 0 1M", "write -P 0x62 5M 64k")
                try await guest.write("vdb", "write -P 0x63 0 1M")
                try await body(fx, guest)
            }
        }

        static func outcome(_ result: CommandResult) throws -> Outcome {
            try JSONDecoder().decode(Outcome.self, from: Data(result.stdout.utf8))
        }

        @Test(
            "Without --raw-disks the raw disk is missing: named on stderr under --quiet with the way out, exit 3, listed by --json, list and restore; --exclude or --raw-disks skip make it intended, exit 0",
            .timeLimit(.minutes(3)))
        func rawDiskMissing() async throws {
            try await Self.withGuest { fx, guest in
                let partial = try await guest.backup(["--quiet"])
                #expect(partial.exitCode == 3 && partial.signal == nil, "\(partial)")
                #expect(
                    partial.stderrLines == [
                        "vdb is not in this backup: \(Self.rawReason); --raw-disks full copies it whole at every point, --exclude vdb leaves it out on purpose"
                    ], "\(partial)")
                let summary = try Self.outcome(partial)
                #expect(summary.disks.map(\.target) == ["vda"], "\(partial)")
                #expect(summary.missing == [.init(target: "vdb", reason: Self.rawReason)], "\(partial)")
                #expect(summary.skipped == summary.missing, "\(partial)")

                let listed = try await guest.pullback(["list", "--repo", guest.repo, guest.name, "--json"])
                try requireSuccess(listed)
                let rows = try JSONDecoder().decode([Listed].self, from: Data(listed.stdout.utf8))
                #expect(rows.map(\.id) == [summary.point] && rows.first?.disks == ["vda"], "\(listed)")
                #expect(rows.first?.lacks == ["vdb"], "\(listed)")
                let human = try await guest.pullback(["list", "--repo", guest.repo, guest.name])
                try requireSuccess(human)
                #expect(human.stdout.hasSuffix("  lacks vdb\n") && human.stdout.contains("  vda  "), "\(human)")

                let restored = fx.target("restored")
                let restore = try await guest.pullback([
                    "restore", "--repo", guest.repo, guest.name, "--to", restored, "--format", "raw",
                ])
                try requireSuccess(restore)
                #expect(
                    restore.stderr
                        == "restoring vda of point \(summary.point); the point does not have the domain's vdb (not backed up)\n",
                    "\(restore)")
                #expect(try FileFacts.listing(restored) == ["vda.raw"])
                try await expectSameBytes(fx, restored + "/vda.raw", guest.reference("vda"))

                // Left out on purpose: no warning, exit 0, nothing missing; the point still lacks vdb.
                let excluded = try await guest.backup(["--quiet", "--exclude", "vdb"])
                try requireSuccess(excluded)
                #expect(excluded.stderr.isEmpty, "\(excluded)")
                let intended = try Self.outcome(excluded)
                #expect(intended.missing.isEmpty, "\(excluded)")
                #expect(intended.skipped == [.init(target: "vdb", reason: "excluded with --exclude")], "\(excluded)")
                let skipped = try await guest.backup(["--raw-disks", "skip"])
                try requireSuccess(skipped)
                #expect(
                    skipped.stderr.contains(
                        "skipping vdb: its format is raw, and --raw-disks skip leaves raw disks out\n")
                        && !skipped.stderr.contains("not in this backup"), "\(skipped)")
                #expect(try Self.outcome(skipped).missing.isEmpty, "\(skipped)")
                let all = try JSONDecoder().decode(
                    [Listed].self,
                    from: Data(try await guest.pullback(["list", "--repo", guest.repo, "--json"]).stdout.utf8))
                #expect(all.map(\.lacks) == [["vdb"], ["vdb"], ["vdb"]], "\(all)")
            }
        }

        @Test(
            "--disk or --exclude naming a disk the domain lacks is one error listing its disks; nothing is made, no job or checkpoint is left; no disk to back up says why each was left out",
            .timeLimit(.minutes(2)))
        func unknownTargetsRefused() async throws {
            try await Self.withGuest { _, guest in
                for (extra, option) in [
                    (["--disk", "vda", "--disk", "vdz"], "--disk"), (["--exclude", "vdz"], "--exclude"),
                ] {
                    let result = try await guest.backup(extra)
                    expectCleanFailure(result)
                    #expect(
                        result.stderr
                            == "pullback: error: the domain pbg has no disk vdz; its disks are vda, vdb (\(option))\n",
                        "\(result)")
                    #expect(result.stdout.isEmpty, "\(result)")
                    #expect(try FileFacts.listing(guest.repo) == ["repository.json"])
                    #expect(try await guest.checkpoints().isEmpty)
                    try await guest.expectNoJob()
                }
                // Nothing printed a note before: the error carries each disk and why it was left out.
                let none = try await guest.backup(["--disk", "vdb"])
                expectCleanFailure(none)
                #expect(
                    none.stderr
                        == "pullback: error: pbg has no disk to back up: vda: not among the --disk options; vdb: \(Self.rawReason) (--raw-disks full copies it whole at every point)\n",
                    "\(none)")
                #expect(try FileFacts.listing(guest.repo) == ["repository.json"])
                #expect(try await guest.checkpoints().isEmpty)
            }
        }
    }
}
