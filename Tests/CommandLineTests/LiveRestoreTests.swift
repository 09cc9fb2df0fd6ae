import Foundation
import Testing

extension BackupIntegration {
    /// `restore --live`: a point booted as a new domain at once, on qcow2 overlays backed by the point's exports,
    /// its disks copied into images of their own while it runs and switched onto them; the images are standalone and
    /// identical to a plain restore, with nothing left serving.
    @Suite("pullback restore --live (private libvirtd)", .serialized)
    struct LiveRestoreTests {
        static let newName = "pb-live-clone"

        /// What `qemu-io -d DEVICE COMMAND` says, run through the HMP monitor of domain `domain`: qemu-io prints to
        /// QEMU's standard output, which the private libvirtd's virtlogd appends to the domain's log, so the answer
        /// is what the log gained.
        static func monitorIO(_ guest: LibvirtGuest, domain: String, device: String, _ command: String)
            async throws -> String
        {
            let log = (guest.daemon?.dir ?? guest.fx.root) + "/log/qemu/\(domain).log"
            let before = (try? Data(contentsOf: URL(fileURLWithPath: log)).count) ?? 0
            let result = try await guest.virshChecked([
                "qemu-monitor-command", domain, "--hmp", "qemu-io -d \(device) \"\(command)\"",
            ])
            // virtlogd writes a moment later.
            for _ in 0..<50 {
                let now = (try? Data(contentsOf: URL(fileURLWithPath: log))) ?? Data()
                if now.count > before { return result.stdout + String(decoding: now.dropFirst(before), as: UTF8.self) }
                try await Task.sleep(for: .milliseconds(100))
            }
            return result.stdout
        }

        /// Expects `read -P` commands inside domain `domain` to verify on `device`: qemu-io says
        /// "read N/N bytes" when they do, and "Pattern verification failed" when they do not.
        static func expectGuestReads(
            _ guest: LibvirtGuest, domain: String, device: String, _ commands: [String],
            sourceLocation: SourceLocation = #_sourceLocation
        ) async throws {
            for command in commands {
                let said = try await monitorIO(guest, domain: domain, device: device, command)
                #expect(
                    said.contains("read ") && said.contains(" bytes at offset ") && !said.contains("failed"),
                    "\(domain) \(command): \(said)", sourceLocation: sourceLocation)
            }
        }

        /// Whether the qcow2 header of `image` names a backing file (its offset, bytes 8-15, is not 0).
        static func hasBacking(_ fx: Fixture, _ image: String) async throws -> Bool {
            try FileFacts.bytes(image, at: 8, count: 8) != Data(count: 8)
        }

        /// The process id `restore --live` printed for its server.
        static func serverPID(in output: String) -> Int32? {
            guard let range = output.range(of: "served from process ") else { return nil }
            return Int32(output[range.upperBound...].prefix { $0.isNumber })
        }

        /// Whether process `pid` runs: there, and not a zombie (whose state in `/proc/PID/stat` is Z) left for a
        /// reaper: the server's parent, the command, may be gone, and the test process may be its reaper.
        static func runs(_ pid: Int32) -> Bool {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return false }
            return stat[stat.index(after: close)...].dropFirst().first != "Z"
        }

        /// Waits until each of `disks` of the live domain has a block job.
        static func waitForBlockJobs(_ guest: LibvirtGuest, disks: [String]) async throws {
            for disk in disks {
                for attempt in 0..<300 {
                    // virsh prints the job's progress on stderr.
                    let info = try await guest.virsh(["blockjob", newName, disk, "--info"])
                    if (info.stdout + info.stderr).contains("Block Copy") { break }
                    guard attempt < 299 else { throw HarnessError("no block job on \(disk): \(info)") }
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
        }

        /// What the live restore said once the domain runs: its start line, on stdout (on stderr with `--json`).
        static func waitUntilStarted(_ live: ChildProcess) async throws -> String {
            for _ in 0..<600 {
                let out = live.stdoutSoFar() + live.stderrSoFar()
                if out.contains("started ") { return out }
                if !live.isRunning { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            throw HarnessError("restore --live did not start: \(live.stdoutSoFar()) \(live.stderrSoFar())")
        }

        @Test(
            "a point boots at once on its exports: the new domain reads the point while QEMU copies it, its own writes survive, and afterwards its disks are on standalone images that equal a plain restore plus those writes, its definition names them, and nothing serves",
            .timeLimit(.minutes(4)))
        func bootsAtOnceAndPullsIn() async throws {
            try await LibvirtGuest.run(driver: .daemon) { fx, guest in
                defer { Task { await guest.removeDomain(Self.newName) } }
                // Enough data that a pull at 2 MiB/s takes seconds: it only moves what the point holds.
                try await guest.write("vda", "write -P 0x5a 0 4M", "write -P 0x3c 40M 16M")
                try await guest.write("vdb", "write -P 0x6b 1M 2M")
                try requireSuccess(try await guest.backup())
                // After the point: the live domain must show the point, not this.
                try await guest.write("vda", "write -P 0x77 0 1M")
                let folder = fx.path("live")
                let live = try fx.spawn(
                    LibvirtGuest.lowPriority + [
                        try Pullback.binaryPath(), "restore", "--repo", guest.repo, guest.name, "--live", "--define",
                        Self.newName, "--to", folder, "--pull-limit", "2M", "--connect", guest.uri, "--json",
                    ], label: "restore-live")
                let started = try await Self.waitUntilStarted(live)
                let pid = try #require(Self.serverPID(in: started), "\(started)")
                #expect(try await guest.virshChecked(["domstate", Self.newName]).stdout.contains("running"))
                #expect(
                    try await Self.hasBacking(fx, folder + "/vda.overlay.qcow2"), "the pull ended before it was watched"
                )
                let (vda, vdb) = (guest.disks[0].device, guest.disks[1].device)
                try await Self.expectGuestReads(
                    guest, domain: Self.newName, device: vda, ["read -P 0x5a 0 4M", "read -P 0x3c 40M 16M"])
                // The control: a read of the wrong pattern is told apart.
                let wrong = try await Self.monitorIO(guest, domain: Self.newName, device: vda, "read -P 0x77 0 64k")
                #expect(wrong.contains("Pattern verification failed"), "\(wrong)")
                try await Self.expectGuestReads(guest, domain: Self.newName, device: vdb, ["read -P 0x6b 1M 2M"])
                _ = try await Self.monitorIO(guest, domain: Self.newName, device: vda, "write -P 0x99 8M 64k")

                let result = try await live.waitForExit(timeout: .seconds(180))
                try requireSuccess(result)
                let summary = try #require(
                    try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result)")
                #expect(summary["domain"] as? String == Self.newName && summary["server_pid"] as? Int == Int(pid))
                #expect(summary["disks"] as? [String] == guest.disks.map(\.target), "\(summary)")
                let (running, seconds) = (summary["seconds_to_running"] as? Double, summary["seconds"] as? Double)
                #expect(running != nil && seconds != nil && running! < seconds!, "\(summary)")
                #expect(!Self.runs(pid), "the server \(pid) still runs")
                for name in [
                    ".pullback-live.json", "export.sock", "serve.log", "vda.overlay.qcow2", "vdb.overlay.qcow2",
                ] {
                    #expect(!FileFacts.exists(folder + "/" + name), "\(name) left in \(folder)")
                }
                for disk in guest.disks {
                    #expect(try await !Self.hasBacking(fx, "\(folder)/\(disk.target).qcow2"), "\(disk.target)")
                }
                try await Self.expectGuestReads(
                    guest, domain: Self.newName, device: vda, ["read -P 0x5a 64k 1M", "read -P 0x99 8M 64k"])

                // Stopped, QEMU has flushed its tables: the images equal a plain restore of the point, plus the
                // new domain's own write.
                _ = try await guest.virshChecked(["destroy", Self.newName])
                // Its definition names the images now, with no backing: the next start needs nothing of the export.
                let defined = try await guest.virshChecked(["dumpxml", "--inactive", Self.newName]).stdout
                for disk in guest.disks {
                    #expect(defined.contains("<source file='\(folder)/\(disk.target).qcow2'"), "\(defined)")
                }
                #expect(!defined.contains("nbd") && !defined.contains("overlay"), "\(defined)")
                let plain = fx.path("plain")
                try requireSuccess(
                    try await guest.pullback([
                        "restore", "--repo", guest.repo, guest.name, "--to", plain, "--format", "raw",
                    ]))
                try await Qemu.io(plain + "/vda.raw", format: "raw", ["write -P 0x99 8M 64k"], using: fx)
                for disk in guest.disks {
                    try await Qemu.expectIdentical(
                        fx, "\(folder)/\(disk.target).qcow2", "\(plain)/\(disk.target).raw")
                }
                try requireSuccess(try await guest.pullback(["verify", "--repo", guest.repo, guest.name]))
            }
        }

        @Test(
            "the command killed mid-copy leaves the domain running on its export; writes during the copy and after it stopped survive --resume, which restores the images and finishes",
            .timeLimit(.minutes(4)))
        func killedThenResumed() async throws {
            try await LibvirtGuest.run(driver: .daemon) { fx, guest in
                defer { Task { await guest.removeDomain(Self.newName) } }
                // QEMU's copy moves its first 16 MiB at once, the rest at the rate: 40 MiB keep it going for seconds.
                try await guest.write("vda", "write -P 0x21 0 2M", "write -P 0x22 16M 40M")
                try await guest.write("vdb", "write -P 0x43 4M 1M")
                try requireSuccess(try await guest.backup())
                let folder = fx.path("live")
                let live = try fx.spawn(
                    [
                        try Pullback.binaryPath(), "restore", "--repo", guest.repo, guest.name, "--live", "--define",
                        Self.newName, "--to", folder, "--pull-limit", "2M", "--connect", guest.uri,
                    ], label: "restore-live")
                let started = try await Self.waitUntilStarted(live)
                let pid = try #require(Self.serverPID(in: started), "\(started)")
                // Killed once every disk's copy runs (at 2 MiB/s, for seconds yet).
                try await Self.waitForBlockJobs(guest, disks: ["vda"])
                live.kill()
                _ = try await live.waitForExit(timeout: .seconds(30))
                #expect(Self.runs(pid), "the server went with the command")
                #expect(try await guest.virshChecked(["domstate", Self.newName]).stdout.contains("running"))
                let vda = guest.disks[0].device
                try await Self.expectGuestReads(guest, domain: Self.newName, device: vda, ["read -P 0x21 0 2M"])
                // A write while QEMU copies the disk from the export (2 MiB/s: for seconds yet).
                _ = try await Self.monitorIO(guest, domain: Self.newName, device: vda, "write -P 0x5e 20M 64k")
                // The copies end without a switch (as when libvirtd drops them): the domain stays on its overlays,
                // and what it writes now is only there. --resume, without a rate, then restores each image straight
                // from the repository and copies the overlay's writes into it.
                _ = try await guest.virshChecked(["blockjob", Self.newName, "vda", "--abort"])
                _ = try await Self.monitorIO(guest, domain: Self.newName, device: vda, "write -P 0x6f 24M 64k")
                try await Self.expectGuestReads(
                    guest, domain: Self.newName, device: vda, ["read -P 0x5e 20M 64k", "read -P 0x6f 24M 64k"])

                let resumed = try await guest.pullback(
                    [
                        "restore", "--repo", guest.repo, guest.name, "--live", "--resume", "--to", folder, "--connect",
                        guest.uri,
                    ], timeout: .seconds(180))
                try requireSuccess(resumed)
                #expect(!Self.runs(pid), "the server \(pid) still runs")
                _ = try await guest.virshChecked(["destroy", Self.newName])
                let plain = fx.path("plain")
                try requireSuccess(
                    try await guest.pullback([
                        "restore", "--repo", guest.repo, guest.name, "--to", plain, "--format", "raw",
                    ]))
                try await Qemu.io(
                    plain + "/vda.raw", format: "raw", ["write -P 0x5e 20M 64k", "write -P 0x6f 24M 64k"], using: fx)
                for disk in guest.disks {
                    #expect(try await !Self.hasBacking(fx, "\(folder)/\(disk.target).qcow2"), "\(disk.target)")
                    try await Qemu.expectIdentical(
                        fx, "\(folder)/\(disk.target).qcow2", "\(plain)/\(disk.target).raw")
                }
            }
        }

        @Test(
            "refused in one line with nothing defined or left serving: a taken name, a folder with files, a remote URI",
            .timeLimit(.minutes(2)))
        func refusals() async throws {
            try await LibvirtGuest.run(driver: .daemon) { fx, guest in
                try requireSuccess(try await guest.backup())
                let base = ["restore", "--repo", guest.repo, guest.name, "--live", "--connect", guest.uri]
                let taken = try await guest.pullback(base + ["--define", guest.name, "--to", fx.path("taken")])
                expectCleanFailure(taken, mentioning: ["exists", "--define"])
                #expect(!FileFacts.exists(fx.path("taken")), "a refused live restore left its folder")

                let busy = fx.path("busy")
                try FileManager.default.createDirectory(atPath: busy, withIntermediateDirectories: true)
                try Data("x".utf8).write(to: URL(fileURLWithPath: busy + "/keep"))
                let notEmpty = try await guest.pullback(base + ["--define", Self.newName, "--to", busy])
                expectCleanFailure(notEmpty, mentioning: ["not an empty folder"])
                #expect(try FileManager.default.contentsOfDirectory(atPath: busy) == ["keep"])

                let remote = try await guest.pullback([
                    "restore", "--repo", guest.repo, guest.name, "--live", "--define", Self.newName, "--to",
                    fx.path("remote"), "--connect", "qemu+tls://hv1.example/system",
                ])
                expectCleanFailure(remote, exitCode: 64, mentioning: ["local --connect"])

                let missing = try await guest.pullback(
                    base + ["--at", "20200101T000000Z", "--define", Self.newName, "--to", fx.path("missing")])
                expectCleanFailure(missing, mentioning: ["20200101T000000Z"])
                #expect(!FileFacts.exists(fx.path("missing")), "a refused live restore left its folder")
                try await Self.expectNothingLeft(guest)
            }
        }

        /// No domain `newName` defined, no `pullback serve` of the guest's repository running.
        static func expectNothingLeft(_ guest: LibvirtGuest, sourceLocation: SourceLocation = #_sourceLocation)
            async throws
        {
            let domains = try await guest.virshChecked(["list", "--all", "--name"]).stdout
            #expect(!domains.contains(newName), "\(domains)", sourceLocation: sourceLocation)
            let servers = try await guest.fx.run(["pgrep", "-f", "pullback serve --repo \(guest.repo)"])
            #expect(servers.stdout.isEmpty, "left serving: \(servers.stdout)", sourceLocation: sourceLocation)
        }

        @Test(
            "with QEMU running as libvirt-qemu (Debian's default): a backup lends QEMU its run folder; a live restore into a folder QEMU cannot reach fails in one line with nothing left, and into one it can reach finishes with images of QEMU's own",
            .timeLimit(.minutes(5)))
        func qemuUser() async throws {
            try await LibvirtGuest.run(driver: .daemon) { fx, guest in
                defer { Task { await guest.removeDomain(Self.newName) } }
                let daemon = try #require(guest.daemon)
                let conf = TestGuest.qemuConf.replacingOccurrences(of: "\"root\"", with: "\"libvirt-qemu\"")
                    .replacingOccurrences(of: "dynamic_ownership = 0", with: "dynamic_ownership = 1")
                try Data(conf.utf8).write(to: URL(fileURLWithPath: daemon.dir + "/etc/qemu.conf"), options: .atomic)
                try await daemon.restartLibvirtd(fx)
                // The guest's images are in the fixture's folder: QEMU's user must be let through it.
                try FileManager.default.setAttributes([.posixPermissions: 0o711], ofItemAtPath: fx.root)
                _ = try await guest.virshChecked(["destroy", guest.name])
                _ = try await guest.virshChecked(["start", guest.name])
                let qemuUID = try await fx.run(["id", "-u", "libvirt-qemu"]).stdout
                    .trimmingCharacters(in: .whitespacesAndNewlines)
                let label = try await guest.virshChecked(["dumpxml", guest.name]).stdout
                #expect(label.contains("<label>+\(qemuUID):"), "the guest does not run as libvirt-qemu: \(label)")

                // QEMU, as libvirt-qemu, makes the export's socket and opens the scratch image in the run's folder.
                try await guest.write("vda", "write -P 0x31 0 1M")
                try requireSuccess(try await guest.backup())

                // A folder QEMU's user cannot enter: the overlays and the socket are out of its reach.
                let hidden = fx.path("hidden")
                try FileManager.default.createDirectory(
                    atPath: hidden, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
                let base = [
                    "restore", "--repo", guest.repo, guest.name, "--live", "--define", Self.newName, "--connect",
                    guest.uri,
                ]
                let refused = try await guest.pullback(base + ["--to", hidden + "/live"])
                expectCleanFailure(refused, mentioning: ["hidden"])
                #expect(!FileFacts.exists(hidden + "/live"), "a failed live restore left its folder")
                try await Self.expectNothingLeft(guest)

                let folder = fx.path("open")
                try requireSuccess(try await guest.pullback(base + ["--to", folder], timeout: .seconds(180)))
                for disk in guest.disks {
                    let attributes = try FileManager.default.attributesOfItem(atPath: "\(folder)/\(disk.target).qcow2")
                    #expect("\(attributes[.ownerAccountID] ?? "")" == qemuUID, "\(disk.target)")
                    #expect((attributes[.posixPermissions] as? Int) == 0o600, "\(disk.target)")
                    #expect(try await !Self.hasBacking(fx, "\(folder)/\(disk.target).qcow2"))
                }
                try await Self.expectGuestReads(
                    guest, domain: Self.newName, device: guest.disks[0].device, ["read -P 0x31 0 1M"])
            }
        }
    }
}
