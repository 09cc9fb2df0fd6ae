import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

extension CopyIntegration {
    /// `pullback backup` and `restore` when things go wrong around them: QEMU killed mid-backup, a repository that
    /// runs out of space, a disk attached and detached between points, and `restore --define`. Every restored image is
    /// compared with a reference raw file that received the same writes as the guest.
    @Suite("pullback backup and restore failure paths (embedded libvirt)", .serialized)
    struct BackupFailureTests {
        // MARK: helpers

        /// Files and folders named like a pending point anywhere under `repo`.
        static func partialsLeft(_ repo: String) -> [String] {
            BackupTests.allFiles(repo).filter { $0.contains(".partial") }
        }

        /// Restores point `id` (qcow2) into `out/<label>/`, checks the files are exactly `targets` and that each
        /// image is clean and reads as `references[target]`.
        static func expectRestore(
            _ guest: LibvirtGuest,
            at id: String,
            targets: [String],
            references: [String: String],
            label: String,
            sourceLocation: SourceLocation = #_sourceLocation
        ) async throws {
            let fx = guest.fx
            let dir = fx.target(label)
            let result = try await guest.pullback([
                "restore", "--repo", guest.repo, guest.name, "--at", id, "--to", dir,
            ])
            try requireSuccess(result, sourceLocation: sourceLocation)
            #expect(
                try FileFacts.listing(dir) == targets.sorted().map { "\($0).qcow2" }, "restored files of \(id)",
                sourceLocation: sourceLocation)
            for target in targets {
                let image = "\(dir)/\(target).qcow2"
                try await Qemu.expectCheckClean(fx, image, sourceLocation: sourceLocation)
                let reference = try #require(references[target], sourceLocation: sourceLocation)
                try await Qemu.expectIdentical(fx, image, reference, sourceLocation: sourceLocation)
            }
        }

        /// The bytes allocated in the guest's pending point (its `.partial` folder), 0 when there is none.
        static func pendingBytes(_ guest: LibvirtGuest) -> Int64 {
            let domainDir = "\(guest.repo)/\(guest.name)"
            guard let partial = ((try? FileFacts.listing(domainDir)) ?? []).first(where: { $0.contains("partial") })
            else { return 0 }
            let folder = "\(domainDir)/\(partial)"
            return ((try? FileFacts.listing(folder)) ?? []).reduce(Int64(0)) {
                $0 + ((try? FileFacts.allocated("\(folder)/\($1)")) ?? 0)
            }
        }

        /// Stops `child` (SIGSTOP) as soon as `ready` holds, polling every 5 ms from a thread of its own for at most
        /// `seconds`, and returns once it is stopped, has ended, or the time is up. The test's own tasks may wait for a
        /// busy cooperative pool while a fast child finishes; a thread catches it mid-way whatever the pool does.
        static func stopWhen(
            _ child: ChildProcess, seconds: Int, _ ready: @escaping @Sendable () -> Bool
        ) async throws {
            try await onThread {
                let deadline = Date().addingTimeInterval(Double(seconds))
                while Date() < deadline, child.isRunning {
                    if ready() {
                        child.suspend()
                        return
                    }
                    usleep(5000)
                }
            }
        }

        /// Waits until `ready` holds (polling every 10 ms) or `seconds` pass, or `child` ends.
        static func waitUntil(
            _ child: ChildProcess, seconds: Int, _ ready: () -> Bool
        ) async throws {
            try await TestSupport.waitUntil(timeout: .seconds(seconds), every: .milliseconds(10)) {
                !child.isRunning || ready()
            }
        }

        /// `virsh ARGS`, run again (up to 3 times) when virsh itself crashes with SIGSEGV, as libvirt 9.0's virsh does
        /// on the first embedded-driver call after a disk hotplug.
        static func virshSurvivingCrash(_ guest: LibvirtGuest, _ arguments: [String]) async throws -> CommandResult {
            var result = try await guest.virsh(arguments)
            for _ in 0..<2 where result.signal == SIGSEGV {
                result = try await guest.virsh(arguments)
            }
            guard result.succeeded else { throw HarnessError("virsh failed: \(result)") }
            return result
        }

        /// Polls `virsh domblklist NAME` until `target` is (or is no longer) listed.
        static func waitForDisk(
            _ guest: LibvirtGuest, _ target: String, present: Bool, seconds: Int = 20
        ) async throws -> Bool {
            let clock = ContinuousClock()
            let deadline = clock.now + .seconds(seconds)
            while true {
                let list = try await Self.virshSurvivingCrash(guest, ["domblklist", guest.name]).stdout
                let listed = list.split(whereSeparator: \.isNewline).contains {
                    $0.split(whereSeparator: \.isWhitespace).first.map(String.init) == target
                }
                if listed == present { return true }
                if clock.now >= deadline { return false }
                try await Task.sleep(for: .milliseconds(250))
            }
        }

        // MARK: tests

        @Test(
            "QEMU killed mid-backup: clean failure, no point; after a restart a full point, then an incremental",
            .timeLimit(.minutes(3)))
        func qemuKilled() async throws {
            try await LibvirtGuest.run(disks: [("vda", 512 * mib)]) { fx, guest in
                // A first full point, so that the killed backup has a base checkpoint whose bitmap it spoils.
                try await guest.write("vda", "write -P 0x70 0 1M")
                let (base, _) = try await BackupTests.backup(guest)
                let snap0 = try await guest.snapshot("0")
                // `flush` so that the qcow2 metadata reaches the file before QEMU is killed.
                try await guest.write("vda", "write -P 0x71 1M 300M", "write -P 0x72 400M 64k", "flush")

                let child = try guest.startBackup()
                // Kill once the copy is under way: the point's .partial folder holds more than 4 MiB. The backup is
                // stopped there until QEMU is gone.
                try await Self.stopWhen(child, seconds: 60) { Self.pendingBytes(guest) > Int64(4 * mib) }
                try #require(child.isRunning, "the backup ended before QEMU was killed: \(child.result())")
                let pid = try #require(guest.qemuPid(), "cannot find the guest's QEMU process")
                #expect(kill(pid, SIGKILL) == 0, "kill -9 \(pid): errno \(errno)")
                child.resume()
                let killed = try await child.waitForExit(timeout: .seconds(60))
                expectCleanFailure(killed, mentioning: ["nbd"])
                #expect(killed.stdout.isEmpty, "stdout of a failed backup: \(killed)")
                #expect(try await guest.list().map(\.id) == [base.point], "a point appeared after QEMU was killed")
                #expect(Self.partialsLeft(guest.repo).isEmpty, "\(BackupTests.allFiles(guest.repo))")
                #expect(try await guest.state().hasPrefix("shut off"), "the guest is not shut off after kill -9")

                try await guest.virshChecked(["start", guest.name])
                #expect(try await guest.state() == "running")

                // Without --json so that the note about falling back to a full backup reaches stderr.
                let after = try await guest.pullback([
                    "backup", guest.name, "--repo", guest.repo, "--connect", guest.uri,
                ])
                try requireSuccess(after)
                let snap1 = try await guest.snapshot("1")
                #expect(
                    after.stderr.contains("full backup instead: the base checkpoint cannot be used ("),
                    "stderr: \(after.stderr)")
                let points = try await guest.list()
                try #require(points.count == 2 && points[0].id == base.point, "\(points)")
                let full = points[1]
                #expect(full.level == "full" && full.parent == nil, "\(full)")
                #expect(Self.partialsLeft(guest.repo).isEmpty, "\(BackupTests.allFiles(guest.repo))")
                try await guest.expectNoJob()
                try await Self.expectRestore(
                    guest, at: full.id, targets: ["vda"], references: snap1, label: "after-kill")

                try await guest.write("vda", "write -P 0x73 100M 64k", "write -z 0 64k", "write -P 0x74 536870911 1")
                let (inc, _) = try await BackupTests.backup(guest)
                let snap2 = try await guest.snapshot("2")
                #expect(inc.level == "incremental" && inc.parent == full.id, "\(inc)")
                #expect((inc.disk("vda")?.bytesRead ?? .max) <= Int64(4 * mib), "incremental read too much: \(inc)")
                try await Self.expectRestore(guest, at: inc.point, targets: ["vda"], references: snap2, label: "inc")
                try await Self.expectRestore(
                    guest, at: full.id, targets: ["vda"], references: snap1, label: "full-again")
                try await Self.expectRestore(guest, at: base.point, targets: ["vda"], references: snap0, label: "base")
                let differ = try await fx.run(["cmp", "-s", snap1["vda"]!, snap2["vda"]!])
                #expect(!differ.succeeded, "snapshots 1 and 2 are equal; a mix-up would go unnoticed")
            }
        }

        @Test(
            "Repository out of space: clean failure, no point, no job, no new checkpoint; a roomy one works",
            .timeLimit(.minutes(3)))
        func repositoryFull() async throws {
            try await LibvirtGuest.run(disks: [("vda", 96 * mib)]) { fx, guest in
                try await guest.write("vda", "write -P 0x21 0 1M")
                let (earlier, _) = try await BackupTests.backup(guest)
                let snap1 = try await guest.snapshot("1")
                let checkpointsBefore = try await guest.checkpoints()
                #expect(checkpointsBefore == [earlier.checkpoint], "\(checkpointsBefore)")

                try await guest.write("vda", "write -P 0x22 1M 63M", "write -P 0x23 90M 64k")
                let small = try await fx.mountTmpfs("small-repo", options: "size=8m")
                let failed = try await guest.backup([], repo: small)
                expectCleanFailure(failed, mentioning: ["space"])
                #expect(failed.stdout.isEmpty, "stdout of a failed backup: \(failed)")
                let listed = try await guest.pullback(["list", "--repo", small, "--json"])
                if listed.succeeded {
                    let points = try JSONDecoder().decode([ListedPoint].self, from: Data(listed.stdout.utf8))
                    #expect(points.isEmpty, "a point was listed after a failed backup: \(points)")
                }
                #expect(Self.partialsLeft(small).isEmpty, "partials left: \(BackupTests.allFiles(small))")
                try await guest.expectNoJob()
                #expect(
                    try await guest.checkpoints() == checkpointsBefore,
                    "the failed backup's checkpoint is still there")
                #expect(try await guest.state() == "running")

                // A roomy repository (the one with the earlier point) takes the next backup.
                let (next, _) = try await BackupTests.backup(guest)
                let snap2 = try await guest.snapshot("2")
                #expect(next.parent == earlier.point && next.level == "incremental", "\(next)")
                #expect(try await guest.list().map(\.id) == [earlier.point, next.point])
                try await guest.expectNoJob()
                try await Self.expectRestore(guest, at: next.point, targets: ["vda"], references: snap2, label: "next")
                try await Self.expectRestore(
                    guest, at: earlier.point, targets: ["vda"], references: snap1, label: "earlier")
            }
        }

        /// `virsh destroy`, then `virsh start` once the domain is shut off, again if it is not running after: the
        /// embedded driver can answer destroy while the old QEMU is still going down, and once left a domain that
        /// `start` had started shut off.
        static func powerCycle(_ guest: LibvirtGuest) async throws {
            _ = try await guest.virsh(["destroy", guest.name])
            _ = try await TestSupport.waitUntil(timeout: .seconds(30)) { (try? await guest.state()) == "shut off" }
            for _ in 0..<2 {
                if (try? await guest.state()) != "running" { _ = try await guest.virsh(["start", guest.name]) }
                if try await TestSupport.waitUntil(timeout: .seconds(15), { (try? await guest.state()) == "running" }) {
                    return
                }
            }
        }

        @Test(
            "A disk attached between points is full in the next point; once detached, older points still restore it",
            .timeLimit(.minutes(3)))
        func diskAddedAndRemoved() async throws {
            try await LibvirtGuest.run(disks: [("vda", 64 * mib)], acpi: true) { fx, guest in
                try await guest.write("vda", "write -P 0x31 0 2M")
                let (full, _) = try await BackupTests.backup(guest)
                let snap1 = try await guest.snapshot("1")
                #expect(full.disks.map(\.target) == ["vda"], "\(full)")

                // Attach vdb live and persistently.
                let vdbImage = guest.image("vdb")
                let vdbRef = guest.reference("vdb")
                try await fx.runChecked(["qemu-img", "create", "-q", "-f", "qcow2", vdbImage, String(32 * mib)])
                try await fx.runChecked(["qemu-img", "create", "-q", "-f", "raw", vdbRef, String(32 * mib)])
                try await guest.virshChecked([
                    "attach-disk", guest.name, vdbImage, "vdb", "--driver", "qemu", "--subdriver", "qcow2",
                    "--targetbus", "virtio", "--persistent",
                ])
                #expect(try await Self.waitForDisk(guest, "vdb", present: true), "vdb is not in domblklist")

                // Its QOM path, from `info block`: the "Attached to:" line after the entry for vdb.qcow2.
                let info = try await Self.virshSurvivingCrash(
                    guest, ["qemu-monitor-command", guest.name, "--hmp", "info block"])
                let lines = info.stdout.split(whereSeparator: \.isNewline).map(String.init)
                var device: String?
                if let entry = lines.firstIndex(where: { $0.contains(vdbImage) }) {
                    device = lines[entry...].first { $0.contains("Attached to:") }?
                        .split(separator: ":", maxSplits: 1).last?.trimmingCharacters(in: .whitespaces)
                }
                let vdbDevice = try #require(device, "no QOM path for vdb in `info block`: \(info.stdout)")

                try await guest.write(
                    device: vdbDevice, reference: vdbRef, "write -P 0x41 0 1M", "write -P 0x42 33554431 1")
                try await guest.write("vda", "write -P 0x32 4M 64k")
                let (second, _) = try await BackupTests.backup(guest)
                let snap2 = try await guest.snapshot("2")
                let vdbSnap2 = fx.path("snap-2-vdb.raw")
                try await fx.runChecked(["cp", "--sparse=always", vdbRef, vdbSnap2])
                #expect(second.parent == full.point, "\(second)")
                #expect(second.disks.map(\.target).sorted() == ["vda", "vdb"], "\(second)")
                #expect(second.disk("vda")?.mode == "incremental", "\(second)")
                #expect(second.disk("vdb")?.mode == "full", "\(second)")
                try await guest.expectNoJob()
                let refs2 = ["vda": snap2["vda"]!, "vdb": vdbSnap2]
                try await Self.expectRestore(
                    guest, at: second.point, targets: ["vda", "vdb"], references: refs2, label: "with-vdb")

                // Detach vdb; the next point lists vda only, the older one still restores vdb.
                try await guest.virshChecked(["detach-disk", guest.name, "vdb", "--persistent"])
                let inactive = try await Self.virshSurvivingCrash(guest, ["dumpxml", guest.name, "--inactive"]).stdout
                #expect(!inactive.contains("vdb"), "vdb is still in the persistent definition: \(inactive)")
                // The guest has no OS to acknowledge the ACPI unplug request, so QEMU may keep the device although
                // libvirt says "Disk detached successfully": then power-cycle it so that the persistent definition
                // (without vdb) applies.
                if !(try await Self.waitForDisk(guest, "vdb", present: false, seconds: 10)) {
                    try await Self.powerCycle(guest)
                }
                #expect(
                    try await Self.waitForDisk(guest, "vdb", present: false, seconds: 5), "vdb is still in domblklist")
                #expect(try await guest.state() == "running")
                try await guest.write("vda", "write -P 0x33 8M 64k")
                let (third, _) = try await BackupTests.backup(guest)
                let snap3 = try await guest.snapshot("3")
                #expect(third.disks.map(\.target) == ["vda"], "\(third)")
                let points = try await guest.list()
                #expect(points.map(\.id) == [full.point, second.point, third.point], "\(points)")
                #expect(points.last?.disks == ["vda"], "\(points)")
                try await guest.expectNoJob()
                try await Self.expectRestore(
                    guest, at: third.point, targets: ["vda"], references: snap3, label: "no-vdb")
                try await Self.expectRestore(
                    guest, at: second.point, targets: ["vda", "vdb"], references: refs2, label: "vdb-again")
                try await Self.expectRestore(guest, at: full.point, targets: ["vda"], references: snap1, label: "first")
            }
        }

        @Test(
            "restore --disk vda --define: a startable copy with a new uuid and one disk; --disk nosuch fails",
            .timeLimit(.minutes(3)))
        func restoreDefine() async throws {
            try await LibvirtGuest.run { fx, guest in
                try await guest.write("vda", "write -P 0x51 0 1M", "write -P 0x52 67108863 1")
                try await guest.write("vdb", "write -P 0x53 64k 64k")
                let (full, _) = try await BackupTests.backup(guest)
                let snap = try await guest.snapshot("1")

                let bad = fx.target("bad")
                let nosuch = try await guest.pullback([
                    "restore", "--repo", guest.repo, guest.name, "--disk", "nosuch", "--to", bad,
                ])
                expectCleanFailure(nosuch, mentioning: ["nosuch", "vda", "vdb"])
                #expect(((try? FileFacts.listing(bad)) ?? []).isEmpty, "restore --disk nosuch wrote files")

                let copy = "\(guest.name)-copy"
                let out = fx.target("copy")
                do {
                    let restored = try await guest.pullback([
                        "restore", "--repo", guest.repo, guest.name, "--at", full.point, "--disk", "vda", "--to", out,
                        "--define", copy, "--connect", guest.uri,
                    ])
                    try requireSuccess(restored)
                    #expect(try FileFacts.listing(out) == ["vda.qcow2"])
                    try await Qemu.expectCheckClean(fx, "\(out)/vda.qcow2")
                    try await Qemu.expectIdentical(fx, "\(out)/vda.qcow2", snap["vda"]!)

                    let original = try await guest.virshChecked(["dumpxml", guest.name]).stdout
                    let xml = try await guest.virshChecked(["dumpxml", copy]).stdout
                    func element(_ tag: String, in text: String) -> String? {
                        guard let open = text.range(of: "<\(tag)>"),
                            let close = text.range(of: "</\(tag)>", range: open.upperBound..<text.endIndex)
                        else { return nil }
                        return String(text[open.upperBound..<close.lowerBound])
                    }
                    #expect(element("name", in: xml) == copy, "\(xml)")
                    let uuid = element("uuid", in: xml)
                    #expect(uuid != nil && !(uuid ?? "").isEmpty, "\(xml)")
                    #expect(uuid != element("uuid", in: original), "the copy kept the original's uuid: \(xml)")
                    let diskBlocks = xml.components(separatedBy: "<disk ").dropFirst()
                    #expect(diskBlocks.count == 1, "disks of \(copy): \(xml)")
                    if let disk = diskBlocks.first {
                        #expect(
                            disk.contains("<source file='\(out)/vda.qcow2'"), "disk source of \(copy): \(disk)")
                        #expect(disk.contains("<target dev='vda'"), "disk target of \(copy): \(disk)")
                    }

                    try await guest.virshChecked(["start", copy])
                    let state = try await guest.virshChecked(["domstate", copy]).stdout
                        .trimmingCharacters(in: .whitespacesAndNewlines)
                    #expect(state == "running", "domstate \(copy): \(state)")
                    // The original is untouched.
                    #expect(try await guest.state() == "running")
                    await guest.removeDomain(copy)
                } catch {
                    await guest.removeDomain(copy)
                    throw error
                }
                let gone = try await guest.virsh(["domstate", copy])
                #expect(!gone.succeeded, "\(copy) is still defined after teardown: \(gone)")
            }
        }
    }
}
