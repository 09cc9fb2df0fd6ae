import Foundation
import Testing

extension BackupIntegration {
    /// `pullback backup` while the VM or its NBD export goes away mid-copy (through a libvirtd, so that virsh can act
    /// while pullback holds its connection), and across the domain being undefined and defined again. After each
    /// failure: one line on stderr, no new point, no pending folder, no job, no new checkpoint, and the next backup
    /// restores byte for byte.
    @Suite("pullback backup disrupted: VM destroyed, NBD export stopped, domain re-created", .serialized)
    struct BackupDisruptionTests {
        // MARK: helpers

        /// Starts `pullback backup` (the guest's default arguments, or `pullback ARGUMENTS`) and returns once more
        /// than 4 MiB have reached its pending point, the copy still under way: stopped there (SIGSTOP) when `stopped`,
        /// else let go on.
        static func backupUnderWay(
            _ guest: LibvirtGuest, arguments: [String]? = nil, stopped: Bool = false,
            sourceLocation: SourceLocation = #_sourceLocation
        ) async throws -> ChildProcess {
            let child =
                try arguments.map {
                    try guest.fx.spawn(
                        LibvirtGuest.lowPriority + [try Pullback.binaryPath()] + $0, label: "pullback-backup")
                }
                ?? guest.startBackup()
            try await BackupFailureTests.stopWhen(child, seconds: 60) {
                BackupFailureTests.pendingBytes(guest) > Int64(4 * mib)
            }
            try #require(
                child.isRunning, "the backup ended before the test could act: \(child.result())",
                sourceLocation: sourceLocation)
            if !stopped { child.resume() }
            return child
        }

        /// Starts `pullback backup`, stops the process (SIGSTOP) once more than 4 MiB have reached the pending point,
        /// starts `virsh ARGUMENTS`, lets pullback go on half a second later and returns its result: the disruption
        /// always lands mid-copy. (virsh is not awaited while pullback is stopped: QEMU drains its NBD clients before
        /// stopping the server, which needs pullback to read.)
        static func disruptedBackup(_ guest: LibvirtGuest, virsh arguments: [String]) async throws -> CommandResult {
            let child = try await Self.backupUnderWay(guest, stopped: true)
            let virsh = try guest.fx.spawn(["virsh", "-c", guest.uri] + arguments, label: "virsh-disrupt")
            try? await Task.sleep(for: .milliseconds(500))
            child.resume()
            let result = try await child.waitForExit(timeout: .seconds(60))
            let disruption = try await virsh.waitForExit(timeout: .seconds(60))
            guard disruption.succeeded else { throw HarnessError("virsh failed: \(disruption)") }
            return result
        }

        /// What a failed run must leave: the points as they were, no pending folder and, while the domain runs, no job
        /// and the checkpoints as they were.
        static func expectNothingLeft(
            _ guest: LibvirtGuest, points: [String], checkpoints: [String],
            sourceLocation: SourceLocation = #_sourceLocation
        ) async throws {
            #expect(
                try await guest.list().map(\.id) == points, "the points changed after a failed backup",
                sourceLocation: sourceLocation)
            #expect(
                BackupFailureTests.partialsLeft(guest.repo).isEmpty, "\(BackupTests.allFiles(guest.repo))",
                sourceLocation: sourceLocation)
            #expect(
                try await guest.checkpoints().sorted() == checkpoints.sorted(),
                "the failed run's checkpoint is left", sourceLocation: sourceLocation)
            #expect(Self.jobRecords(guest).isEmpty, "a job record is left", sourceLocation: sourceLocation)
            try await guest.expectNoJob(sourceLocation: sourceLocation)
        }

        /// The job records (`.job-<id>.json`) in the guest's domain folder.
        static func jobRecords(_ guest: LibvirtGuest) -> [String] {
            ((try? FileFacts.listing("\(guest.repo)/\(guest.name)")) ?? []).filter { $0.hasPrefix(".job-") }
        }

        /// The names of the persistent bitmaps in a qcow2 image (`qemu-img info`).
        static func bitmaps(_ fx: Fixture, _ image: String) async throws -> [String] {
            let info = try await fx.runChecked(["qemu-img", "info", "--force-share", "--output=json", image])
            let object = try JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as? [String: Any]
            let specific = (object?["format-specific"] as? [String: Any])?["data"] as? [String: Any]
            let list = specific?["bitmaps"] as? [[String: Any]] ?? []
            return list.compactMap { $0["name"] as? String }
        }

        /// Re-creates the domain as an admin would: shut off, undefined with its checkpoint metadata, defined again
        /// from its saved XML and started. libvirt forgets every checkpoint; the disks keep their bitmaps unless
        /// `whileShutOff` removes them.
        static func recreateDomain(_ guest: LibvirtGuest, whileShutOff: () async throws -> Void = {}) async throws {
            let xml = try await guest.virshChecked(["dumpxml", "--inactive", guest.name]).stdout
            let path = guest.fx.path("recreated.xml")
            try? FileManager.default.removeItem(atPath: path)
            try FileFacts.create(path, with: Data(xml.utf8))
            try await guest.virshChecked(["destroy", guest.name])
            try await whileShutOff()
            try await guest.virshChecked(["undefine", guest.name, "--checkpoints-metadata"])
            try await guest.virshChecked(["define", path])
            #expect(try await guest.checkpoints().isEmpty, "checkpoints survived undefine")
            try await guest.virshChecked(["start", guest.name])
        }

        // MARK: tests

        @Test(
            "The VM destroyed mid-backup: one-line failure, nothing left; after a start the next backup restores right",
            .timeLimit(.minutes(3)))
        func destroyed() async throws {
            try await LibvirtGuest.run(disks: [("vda", 512 * mib)], driver: .daemon) { fx, guest in
                try await guest.write("vda", "write -P 0x61 0 1M")
                let (base, _) = try await BackupTests.backup(guest)
                let snap0 = try await guest.snapshot("0")
                let checkpoints = try await guest.checkpoints()
                try await guest.write("vda", "write -P 0x62 1M 300M", "write -P 0x63 400M 64k", "flush")

                let failed = try await Self.disruptedBackup(guest, virsh: ["destroy", guest.name])
                expectCleanFailure(failed)
                #expect(failed.stdout.isEmpty, "stdout of a failed backup: \(failed)")
                #expect(try await guest.state().hasPrefix("shut off"))
                // libvirt deletes no checkpoint of a shut-off domain: the failed run's may stay until the next run.
                #expect(try await guest.list().map(\.id) == [base.point], "a point appeared")
                #expect(BackupFailureTests.partialsLeft(guest.repo).isEmpty, "\(BackupTests.allFiles(guest.repo))")
                // The run's job record may stay: when the domain dies while the run handles its failure, the run
                // cannot always tell whether its job is gone. The next run settles it (checked below).

                try await guest.virshChecked(["start", guest.name])
                try await guest.write("vda", "write -P 0x64 100M 64k", "write -z 0 64k")
                let (next, _) = try await BackupTests.backup(guest)
                let snap1 = try await guest.snapshot("1")
                #expect(next.level == "incremental" && next.parent == base.point, "\(next)")
                try await guest.expectNoJob()
                #expect(
                    try await guest.checkpoints().sorted() == (checkpoints + [next.checkpoint]).sorted(),
                    "the failed run's checkpoint was not removed by the next run")
                #expect(Self.jobRecords(guest).isEmpty, "a job record is left after the next run")
                try await BackupFailureTests.expectRestore(
                    guest, at: next.point, targets: ["vda"], references: snap1, label: "next")
                try await BackupFailureTests.expectRestore(
                    guest, at: base.point, targets: ["vda"], references: snap0, label: "base")
            }
        }

        @Test(
            "The NBD export stopped mid-backup: one-line failure, nothing left, the VM runs on; the next backup is right",
            .timeLimit(.minutes(3)))
        func exportStopped() async throws {
            try await LibvirtGuest.run(disks: [("vda", 512 * mib)], driver: .daemon) { fx, guest in
                try await guest.write("vda", "write -P 0x65 0 1M")
                let (base, _) = try await BackupTests.backup(guest)
                let checkpoints = try await guest.checkpoints()
                try await guest.write("vda", "write -P 0x66 1M 300M", "write -P 0x67 400M 64k")

                // The export goes away: QEMU's NBD server stops and closes every client connection.
                let failed = try await Self.disruptedBackup(
                    guest, virsh: ["qemu-monitor-command", guest.name, "--hmp", "nbd_server_stop"])
                expectCleanFailure(failed, mentioning: ["nbd"])
                #expect(failed.stdout.isEmpty, "stdout of a failed backup: \(failed)")
                #expect(try await guest.state() == "running")
                try await Self.expectNothingLeft(guest, points: [base.point], checkpoints: checkpoints)

                try await guest.write("vda", "write -P 0x68 200M 70000")
                let (next, _) = try await BackupTests.backup(guest)
                let snap1 = try await guest.snapshot("1")
                #expect(next.level == "incremental" && next.parent == base.point, "\(next)")
                try await guest.expectNoJob()
                try await BackupTests.expectRepositoryImages(
                    guest, point: next.point, parent: base.point, matching: snap1)
                try await BackupFailureTests.expectRestore(
                    guest, at: next.point, targets: ["vda"], references: snap1, label: "next")
            }
        }

        @Test(
            "libvirtd restarted mid-backup: the job is ended through a new connection and the point is whole",
            .timeLimit(.minutes(3)))
        func libvirtdRestarted() async throws {
            try await LibvirtGuest.run(disks: [("vda", 512 * mib), ("vdb", 32 * mib)], driver: .daemon) { fx, guest in
                try await guest.write("vda", "write -P 0x51 0 1M")
                let (base, _) = try await BackupTests.backup(guest)
                try await guest.write("vda", "write -P 0x52 1M 300M", "write -P 0x53 400M 64k")
                try await guest.write("vdb", "write -P 0x54 0 64k")

                let child = try await Self.backupUnderWay(guest)
                try await child.whileSuspended { try await #require(guest.daemon).restartLibvirtd(fx) }
                let result = try await child.waitForExit(timeout: .seconds(120))
                try requireSuccess(result)
                let summary = try BackupSummary.decode(result)
                let snap = try await guest.snapshot("1")
                #expect(summary.level == "incremental" && summary.parent == base.point, "\(summary)")
                try await guest.expectNoJob()
                #expect(try await guest.checkpoints().sorted() == [base.checkpoint, summary.checkpoint].sorted())
                try await BackupTests.expectRepositoryImages(
                    guest, point: summary.point, parent: base.point, matching: snap)
                try await BackupTests.expectRestores(guest, at: summary.point, matching: snap, label: "restarted")

                try await guest.write("vdb", "write -P 0x55 1M 64k")
                let (next, _) = try await BackupTests.backup(guest)
                #expect(next.level == "incremental" && next.parent == summary.point, "\(next)")
            }
        }

        @Test(
            "pullback killed mid-backup: the next run ends the job it left, removes its checkpoint and folder, and is right",
            .timeLimit(.minutes(3)))
        func pullbackKilled() async throws {
            try await LibvirtGuest.run(disks: [("vda", 512 * mib)], driver: .daemon) { fx, guest in
                try await guest.write("vda", "write -P 0x5a 0 1M")
                let (base, _) = try await BackupTests.backup(guest)
                try await guest.write("vda", "write -P 0x5b 1M 300M", "write -P 0x5c 400M 64k")

                let child = try await Self.backupUnderWay(guest)
                child.kill()
                _ = try await child.waitForExit(timeout: .seconds(30))
                // What a killed run leaves: its job, its checkpoint and its .partial folder.
                let info = try await guest.virshChecked(["domjobinfo", guest.name]).stdout
                #expect(info.contains("Backup"), "no job was left by the killed run: \(info)")
                #expect(try await guest.checkpoints().count == 2)
                #expect(!BackupFailureTests.partialsLeft(guest.repo).isEmpty)

                // Another repository must not touch that job: it is refused, saying what to do.
                let other = try await guest.backup([], repo: fx.path("repo2"))
                expectCleanFailure(other, mentioning: ["being backed up already", "domjobabort"])
                #expect(try await guest.virshChecked(["domjobinfo", guest.name]).stdout.contains("Backup"))

                try await guest.write("vda", "write -P 0x5d 100M 64k")
                let next = try await guest.pullback([
                    "backup", guest.name, "--repo", guest.repo, "--connect", guest.uri, "--json",
                ])
                try requireSuccess(next)
                #expect(next.stderr.contains("interrupted run"), "stderr: \(next.stderr)")
                let summary = try BackupSummary.decode(next)
                let snap = try await guest.snapshot("1")
                #expect(summary.level == "incremental" && summary.parent == base.point, "\(summary)")
                try await guest.expectNoJob()
                #expect(try await guest.checkpoints().sorted() == [base.checkpoint, summary.checkpoint].sorted())
                #expect(BackupFailureTests.partialsLeft(guest.repo).isEmpty, "\(BackupTests.allFiles(guest.repo))")
                #expect(
                    try FileFacts.listing("\(guest.repo)/\(guest.name)/\(summary.point)")
                        == ["checkpoint.xml", "domain.xml", "manifest.json", "vda.blocks", "vda.qcow2"])
                try await BackupFailureTests.expectRestore(
                    guest, at: summary.point, targets: ["vda"], references: snap, label: "after-kill")
                #expect(Self.jobRecords(guest).isEmpty, "job records left: \(BackupTests.allFiles(guest.repo))")

                // Shut off, the guest is started paused for the backup; killed then, the next run shuts it off.
                try await guest.virshChecked(["destroy", guest.name])
                try await guest.writeOffline("vda", "write -P 0x5e 1M 300M")
                let offline = try await Self.backupUnderWay(guest)
                offline.kill()
                _ = try await offline.waitForExit(timeout: .seconds(30))
                #expect(try await guest.state() == "paused")
                #expect(Self.jobRecords(guest).count == 1, "\(BackupTests.allFiles(guest.repo))")
                let after = try await guest.pullback([
                    "backup", guest.name, "--repo", guest.repo, "--connect", guest.uri, "--json",
                ])
                try requireSuccess(after)
                #expect(after.stderr.contains("shutting \(guest.name) off again"), "stderr: \(after.stderr)")
                #expect(try await guest.state() == "shut off")
                let last = try BackupSummary.decode(after)
                #expect(last.parent == summary.point, "\(last)")
                #expect(Self.jobRecords(guest).isEmpty && BackupFailureTests.partialsLeft(guest.repo).isEmpty)
                try await BackupFailureTests.expectRestore(
                    guest, at: last.point, targets: ["vda"], references: try await guest.snapshot("2"), label: "off")
            }
        }

        @Test(
            "Backups started while one runs are refused at once, by the repository lock or the running job; the first is unharmed",
            .timeLimit(.minutes(3)))
        func concurrentBackups() async throws {
            try await LibvirtGuest.run(disks: [("vda", 512 * mib)], driver: .daemon) { fx, guest in
                try await guest.write("vda", "write -P 0x41 0 300M", "write -P 0x42 400M 64k")
                let other = fx.path("repo2")
                let first = try await Self.backupUnderWay(guest)
                first.suspend()
                let sameRepository: CommandResult
                let otherRepository: CommandResult
                do {
                    sameRepository = try await guest.backup()
                    otherRepository = try await guest.backup([], repo: other)
                } catch {
                    first.resume()
                    throw error
                }
                first.resume()
                let done = try await first.waitForExit(timeout: .seconds(120))
                try requireSuccess(done)
                let summary = try BackupSummary.decode(done)
                let snap = try await guest.snapshot("1")

                expectCleanFailure(sameRepository, mentioning: ["another backup", "\(first.pid)"])
                expectCleanFailure(otherRepository, mentioning: ["being backed up already", "wait"])
                #expect(try await guest.list(repo: other).isEmpty, "a point appeared in the second repository")
                #expect(BackupFailureTests.partialsLeft(other).isEmpty, "\(BackupTests.allFiles(other))")
                #expect(try await guest.checkpoints() == [summary.checkpoint], "checkpoints: a refused run left one")
                try await guest.expectNoJob()
                try await BackupFailureTests.expectRestore(
                    guest, at: summary.point, targets: ["vda"], references: snap, label: "first")

                // Once the first is done, the other repository starts its own chain.
                let later = try await guest.backup([], repo: other)
                try requireSuccess(later)
                #expect(try BackupSummary.decode(later).level == "full")
            }
        }

        @Test(
            "Domain undefined and defined again: the chain continues by redefinition; without bitmaps, a full point",
            .timeLimit(.minutes(3)), )
        func recreatedDomain() async throws {
            // Through the daemon only: with the embedded driver, `virsh destroy` right after another virsh process
            // started the guest can find it "not running" (libvirt 9.0 reconnects to QEMU in the background).
            try await LibvirtGuest.run(driver: .daemon) { fx, guest in
                try await guest.write("vda", "write -P 0x91 0 1M")
                try await guest.write("vdb", "write -P 0x92 1M 1M")
                let (full, _) = try await BackupTests.backup(guest)
                let snap0 = try await guest.snapshot("0")

                // Re-created with the bitmaps intact: the checkpoint is redefined and the chain goes on.
                try await guest.write("vda", "write -P 0x93 4M 65537", "write -z 0 4k", "flush")
                try await Self.recreateDomain(guest)
                let continued = try await guest.pullback([
                    "backup", guest.name, "--repo", guest.repo, "--connect", guest.uri,
                ])
                try requireSuccess(continued)
                let snap1 = try await guest.snapshot("1")
                #expect(continued.stderr.contains("redefined"), "stderr: \(continued.stderr)")
                var points = try await guest.list()
                try #require(points.count == 2, "\(points)")
                #expect(points[1].level == "incremental" && points[1].parent == full.point, "\(points[1])")
                #expect(points[1].bytes <= Int64(mib), "the incremental read \(points[1].bytes) bytes")
                try await BackupTests.expectRepositoryImages(
                    guest, point: points[1].id, parent: full.point, matching: snap1)
                try await BackupTests.expectRestores(guest, at: points[1].id, matching: snap1, label: "redefined")

                // Re-created after the disks lost their bitmaps (removed while it was shut off): a full point says
                // why, and the chain starts again from it.
                try await guest.write("vdb", "write -P 0x94 3M 64k", "flush")
                try await Self.recreateDomain(guest) {
                    for disk in guest.disks {
                        let names = try await Self.bitmaps(fx, guest.image(disk.target))
                        #expect(!names.isEmpty, "\(disk.target) has no bitmap to remove")
                        for name in names {
                            try await fx.runChecked(["qemu-img", "bitmap", "--remove", guest.image(disk.target), name])
                        }
                    }
                }
                let restarted = try await guest.pullback([
                    "backup", guest.name, "--repo", guest.repo, "--connect", guest.uri,
                ])
                try requireSuccess(restarted)
                let snap2 = try await guest.snapshot("2")
                #expect(restarted.stderr.contains("full backup"), "stderr: \(restarted.stderr)")
                points = try await guest.list()
                try #require(points.count == 3, "\(points)")
                #expect(points[2].level == "full" && points[2].parent == nil, "\(points[2])")
                try await BackupTests.expectRestores(guest, at: points[2].id, matching: snap2, label: "full-again")

                try await guest.write("vda", "write -P 0x95 40M 64k")
                let (after, _) = try await BackupTests.backup(guest)
                let snap3 = try await guest.snapshot("3")
                #expect(after.level == "incremental" && after.parent == points[2].id, "\(after)")
                try await BackupTests.expectRestores(guest, at: after.point, matching: snap3, label: "after")
                try await BackupTests.expectRestores(guest, at: full.point, matching: snap0, label: "first")
            }
        }
    }
}
