import Foundation
import Testing

extension BackupIntegration {
    /// Backups of a domain through a libvirtd reached over `qemu+tcp://` (the harness's private daemon listening on
    /// loopback), whose disks QEMU exports over TCP with TLS: nothing crosses through a unix socket of this host but
    /// the harness's own virsh calls.
    @Suite("pullback backup of a remote hypervisor (qemu+tcp, NBD over TCP with TLS)", .serialized)
    struct RemoteBackupTests {
        /// `backup` arguments through `remote`'s TCP URI, exporting on the ports from the first of `held` (taken, so
        /// that the next is used) or a random range, `--verbose` so that the export's URI is logged.
        static func remoteArguments(
            _ guest: LibvirtGuest, _ extra: [String] = [], held: HeldPort? = nil
        ) throws -> [String] {
            let remote = try #require(guest.daemon?.remote)
            let first = held?.port ?? Int.random(in: 30000...50000)
            let certificates =
                extra.contains("--nbd-tls-certificates")
                ? [] : ["--nbd-tls-certificates", remote.certificates.clientDirectory]
            return [
                "backup", guest.name, "--repo", guest.repo, "--connect", remote.uri, "--json", "--verbose",
                "--nbd-ports", "\(first)-\(first + 7)",
            ] + certificates + extra
        }

        static func remoteBackup(
            _ guest: LibvirtGuest, _ extra: [String] = [], held: HeldPort? = nil
        ) async throws -> CommandResult {
            try await guest.pullback(try remoteArguments(guest, extra, held: held))
        }

        @Test(
            "full, incremental, incremental through qemu+tcp with TLS exports: every point restores as the guest was",
            .timeLimit(.minutes(4)))
        func chainOverTCP() async throws {
            try await LibvirtGuest.run(driver: .remoteDaemon) { fx, guest in
                try await guest.write("vda", "write -P 0x5a 1M 128k", "write -P 0x11 8M 8M")
                try await guest.write("vdb", "write -P 0x22 0 1M")
                var snapshots: [(String, [String: String])] = []
                for (index, writes) in [["write -P 0x33 65535 3", "write -z 8M 64k"], ["write -P 0x44 20M 1M"], []]
                    .enumerated()
                {
                    // The first port of the range held by another process: the backup takes the next one.
                    let held = index == 1 ? try HeldPort() : nil
                    defer { held?.close() }
                    let result = try await Self.remoteBackup(guest, held: held)
                    try requireSuccess(result)
                    let summary = try BackupSummary.decode(result)
                    #expect(summary.level == (index == 0 ? "full" : "incremental"), "\(summary)")
                    #expect(result.stderr.contains("nbds://127.0.0.1:"), "the export is TLS over TCP: \(result)")
                    if let held {
                        #expect(result.stderr.contains("nbds://127.0.0.1:\(held.port + 1)/"), "\(result.stderr)")
                    }
                    snapshots.append((summary.point, try await guest.snapshot("\(index)")))
                    try await guest.expectNoJob()
                    for command in writes { try await guest.write("vda", command) }
                }
                for (index, (point, snapshot)) in snapshots.enumerated() {
                    try await BackupTests.expectRestores(guest, at: point, matching: snapshot, label: "tcp\(index)")
                }
            }
        }

        @Test(
            "without client certificates a remote backup is refused before anything; wrong ones fail in one line; --insecure-nbd exports in clear",
            .timeLimit(.minutes(4)))
        func certificates() async throws {
            try await LibvirtGuest.run(driver: .remoteDaemon) { fx, guest in
                try await guest.write("vda", "write -P 0x66 0 1M")
                let missing = fx.path("no-such-folder")
                let refused = try await Self.remoteBackup(guest, ["--nbd-tls-certificates", missing])
                expectCleanFailure(refused, mentioning: [missing, "--insecure-nbd"])
                #expect(try await guest.checkpoints().isEmpty)
                #expect(!FileManager.default.fileExists(atPath: "\(guest.repo)/\(guest.name)"), "nothing was made")

                // A folder whose CA did not sign the server's certificate: TLS fails, nothing is left.
                let stranger = try await TLSCertificates.make(fx, name: "stranger")
                let wrong = try await Self.remoteBackup(
                    guest, ["--nbd-tls-certificates", stranger.clientDirectory, "--retries", "0"])
                expectCleanFailure(wrong, mentioning: [stranger.clientDirectory])
                #expect(try await guest.list().isEmpty, "no point")
                #expect(try await guest.checkpoints().isEmpty, "no checkpoint")
                try await guest.expectNoJob()

                let plain = try await Self.remoteBackup(guest, ["--insecure-nbd", "--nbd-tls-certificates", missing])
                try requireSuccess(plain)
                #expect(plain.stderr.contains("nbd://127.0.0.1:"), "\(plain.stderr)")
                let summary = try BackupSummary.decode(plain)
                try await BackupTests.expectRestores(
                    guest, at: summary.point, matching: try await guest.snapshot("plain"), label: "plain")
            }
        }

        @Test(
            "pullback killed mid-backup over TCP: the next run knows its job by host and port, ends it, and its point is right",
            .timeLimit(.minutes(4)))
        func killedRun() async throws {
            try await LibvirtGuest.run(disks: [("vda", 512 * mib)], driver: .remoteDaemon) { _, guest in
                try await guest.write("vda", "write -P 0x5a 0 1M")
                try requireSuccess(try await Self.remoteBackup(guest))
                try await guest.write("vda", "write -P 0x5b 1M 300M", "write -P 0x5c 400M 64k")
                let child = try await BackupDisruptionTests.backupUnderWay(
                    guest, arguments: try Self.remoteArguments(guest))
                child.kill()
                _ = try await child.waitForExit(timeout: .seconds(30))
                let info = try await guest.virshChecked(["domjobinfo", guest.name]).stdout
                #expect(info.contains("Backup"), "the killed run left its job: \(info)")

                let next = try await Self.remoteBackup(guest)
                try requireSuccess(next)
                #expect(next.stderr.contains("ending the backup job an interrupted run"), "\(next.stderr)")
                let summary = try BackupSummary.decode(next)
                try await BackupTests.expectRestores(
                    guest, at: summary.point, matching: try await guest.snapshot("after-kill"), label: "after-kill")
                try await guest.expectNoJob()
                #expect(BackupFailureTests.partialsLeft(guest.repo).isEmpty)
            }
        }

        @Test(
            "the hypervisor's libvirtd restarted mid-backup over TCP: the job is ended through a new connection, the point is whole",
            .timeLimit(.minutes(4)))
        func libvirtdRestarted() async throws {
            try await LibvirtGuest.run(disks: [("vda", 512 * mib)], driver: .remoteDaemon) { fx, guest in
                try await guest.write("vda", "write -P 0x61 0 1M")
                try requireSuccess(try await Self.remoteBackup(guest))
                try await guest.write("vda", "write -P 0x62 1M 300M", "write -P 0x63 400M 64k")
                let child = try await BackupDisruptionTests.backupUnderWay(
                    guest, arguments: try Self.remoteArguments(guest))
                try await child.whileSuspended { try await #require(guest.daemon).restartLibvirtd(fx) }
                let result = try await child.waitForExit(timeout: .seconds(120))
                try requireSuccess(result)
                let summary = try BackupSummary.decode(result)
                #expect(summary.level == "incremental", "\(summary)")
                try await guest.expectNoJob()
                try await BackupTests.expectRestores(
                    guest, at: summary.point, matching: try await guest.snapshot("restarted"), label: "restarted")
            }
        }

        @Test(
            "two domains of one hypervisor backed up at once over TCP take two ports of the range; both points are right",
            .timeLimit(.minutes(4)))
        func twoDomainsAtOnce() async throws {
            try await LibvirtGuest.run(disks: [("vda", 512 * mib)], driver: .remoteDaemon) { fx, guest in
                try await guest.write("vda", "write -P 0x71 0 300M")
                // A second domain under the same libvirtd, its disk written before it starts (it writes nothing).
                let other = "pbg2"
                let image = fx.path("pbg2-vda.qcow2")
                try await fx.runChecked(["qemu-img", "create", "-q", "-f", "qcow2", image, "256M"])
                try await fx.runChecked(["qemu-io", "-f", "qcow2", "-c", "write -P 0x72 4M 100M", image])
                let xml = fx.path("pbg2.xml")
                try FileFacts.create(
                    xml,
                    with: Data(
                        """
                        <domain type='qemu'><name>\(other)</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
                        <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>\
                        <emulator>/usr/bin/qemu-system-x86_64</emulator><disk type='file' device='disk'>\
                        <driver name='qemu' type='qcow2'/><source file='\(image)'/><target dev='vda' bus='virtio'/>\
                        </disk><memballoon model='none'/></devices></domain>
                        """.utf8))
                try await guest.virshChecked(["define", xml])
                do {
                    try await guest.virshChecked(["start", other])
                    let ports = Int.random(in: 30000...50000)
                    // The same range for both: the first backup to begin takes its first port, the other the next.
                    // The first is stopped (SIGSTOP) mid-copy while the second runs whole, so that the two jobs
                    // overlap however fast either would be on its own.
                    func arguments(_ domain: String) throws -> [String] {
                        var list = try Self.remoteArguments(guest)
                        list[1] = domain
                        if let index = list.firstIndex(of: "--nbd-ports") { list[index + 1] = "\(ports)-\(ports + 7)" }
                        return list
                    }
                    let (first, second) = (try arguments(guest.name), try arguments(other))
                    let childA = try await BackupDisruptionTests.backupUnderWay(guest, arguments: first)
                    childA.suspend()
                    let resultB: CommandResult
                    do {
                        resultB = try await guest.pullback(second)
                    } catch {
                        childA.resume()
                        throw error
                    }
                    childA.resume()
                    let resultA = try await childA.waitForExit(timeout: .seconds(120))
                    try requireSuccess(resultA)
                    try requireSuccess(resultB)
                    let used = [resultA, resultB].map { result in
                        (ports...(ports + 7)).filter { result.stderr.contains("nbds://127.0.0.1:\($0)/") }
                    }
                    #expect(used[0].count == 1 && used[1].count == 1 && used[0] != used[1], "ports used: \(used)")

                    let pointA = try BackupSummary.decode(resultA).point
                    try await BackupTests.expectRestores(
                        guest, at: pointA, matching: try await guest.snapshot("a"), label: "a")
                    let pointB = try BackupSummary.decode(resultB).point
                    let restored = fx.target("pbg2-restored")
                    try requireSuccess(
                        try await guest.pullback([
                            "restore", "--repo", guest.repo, other, "--at", pointB, "--to", restored, "--format", "raw",
                        ]))
                    try await fx.runChecked([
                        "qemu-img", "compare", "-U", "-f", "raw", "\(restored)/vda.raw", "-F", "qcow2", image,
                    ])
                } catch {
                    _ = try? await guest.virsh(["destroy", other])
                    _ = try? await guest.virsh(["undefine", other, "--checkpoints-metadata"])
                    throw error
                }
                _ = try? await guest.virsh(["destroy", other])
                _ = try? await guest.virsh(["undefine", other, "--checkpoints-metadata"])
            }
        }

        @Test(
            "over TCP, a shut-off domain is backed up (started paused, shut off again), and after the domain is re-created its checkpoint is redefined and the chain goes on",
            .timeLimit(.minutes(4)))
        func shutOffAndRedefined() async throws {
            try await LibvirtGuest.run(running: false, driver: .remoteDaemon) { _, guest in
                try await guest.writeOffline("vda", "write -P 0x81 0 1M", "write -P 0x82 30M 64k")
                let offline = try await Self.remoteBackup(guest)
                try requireSuccess(offline)
                let full = try BackupSummary.decode(offline)
                #expect(full.level == "full", "\(full)")
                #expect(try await guest.state().hasPrefix("shut off"), "shut off again after the backup")
                try await BackupTests.expectRestores(
                    guest, at: full.point, matching: try await guest.snapshot("offline"), label: "offline")

                try await guest.virshChecked(["start", guest.name])
                try await guest.write("vda", "write -P 0x83 4M 65537", "flush")
                try await BackupDisruptionTests.recreateDomain(guest)
                let continued = try await Self.remoteBackup(guest)
                try requireSuccess(continued)
                let next = try BackupSummary.decode(continued)
                #expect(continued.stderr.contains("redefined"), "\(continued.stderr)")
                #expect(next.level == "incremental" && next.parent == full.point, "\(next)")
                try await BackupTests.expectRestores(
                    guest, at: next.point, matching: try await guest.snapshot("continued"), label: "continued")
            }
        }
    }
}
