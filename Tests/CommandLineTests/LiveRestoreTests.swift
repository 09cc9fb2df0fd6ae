import Foundation
import Testing

extension BackupIntegration {
    /// `restore --live`: a point booted as a new domain at once, on qcow2 overlays backed by the point's exports,
    /// its disks pulled in while it runs; the overlays end up standalone and identical to a plain restore, with
    /// nothing left serving.
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
            "a point boots at once on its exports: the new domain reads the point while the pull runs, its own writes survive the pull, and afterwards the overlays stand alone, equal a plain restore plus those writes, and nothing serves",
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
                #expect(try await Self.hasBacking(fx, folder + "/vda.qcow2"), "the pull ended before it was watched")
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
                for name in [".pullback-live.json", "export.sock", "serve.log"] {
                    #expect(!FileFacts.exists(folder + "/" + name), "\(name) left in \(folder)")
                }
                for disk in guest.disks {
                    #expect(try await !Self.hasBacking(fx, "\(folder)/\(disk.target).qcow2"), "\(disk.target)")
                }
                try await Self.expectGuestReads(
                    guest, domain: Self.newName, device: vda, ["read -P 0x5a 64k 1M", "read -P 0x99 8M 64k"])

                // Stopped, QEMU has flushed its tables: the overlays equal a plain restore of the point, plus the
                // new domain's own write.
                _ = try await guest.virshChecked(["destroy", Self.newName])
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
            "the command killed mid-pull leaves the domain running on its export; --resume finishes the pull",
            .timeLimit(.minutes(4)))
        func killedThenResumed() async throws {
            try await LibvirtGuest.run(driver: .daemon) { fx, guest in
                defer { Task { await guest.removeDomain(Self.newName) } }
                try await guest.write("vda", "write -P 0x21 0 2M", "write -P 0x22 16M 16M")
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
                live.kill()
                _ = try await live.waitForExit(timeout: .seconds(30))
                #expect(Self.runs(pid), "the server went with the command")
                #expect(try await guest.virshChecked(["domstate", Self.newName]).stdout.contains("running"))
                try await Self.expectGuestReads(
                    guest, domain: Self.newName, device: guest.disks[0].device, ["read -P 0x21 0 2M"])

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
                let domains = try await guest.virshChecked(["list", "--all", "--name"]).stdout
                #expect(!domains.contains(Self.newName), "\(domains)")
                let servers = try await fx.run(["pgrep", "-f", "pullback serve --repo \(guest.repo)"])
                #expect(servers.stdout.isEmpty, "left serving: \(servers.stdout)")
            }
        }
    }
}
