import Foundation
import Testing

extension CopyIntegration {
    /// `pullback backup` of several domains in one run: three guests in one embedded root, backed up with `--all`,
    /// one of them failing, then with `--exclude-domain` and `--parallel 1`. Every point made is restored and compared
    /// with the guest's reference raw file.
    @Suite("pullback backup of several domains (embedded libvirt)", .serialized)
    struct HostBackupTests {
        /// `pullback backup --json` of several domains.
        struct Report: Decodable {
            struct Entry: Decodable {
                struct Failure: Decodable {
                    let code: String
                    let message: String
                }
                let domain: String
                let outcome: BackupSummary?
                let error: Failure?
            }
            let domains: [Entry]
            let failed: Int

            func outcome(_ domain: String) -> BackupSummary? { domains.first { $0.domain == domain }?.outcome }
        }

        static let names = ["pbh-a", "pbh-b", "pbh-c"]

        /// Restores `guest`'s point `id` and compares it with the guest's reference of its one disk, vda.
        static func expectRestore(_ guest: LibvirtGuest, at id: String?, label: String) async throws {
            let id = try #require(id, "no point of \(guest.name)")
            try await BackupFailureTests.expectRestore(
                guest, at: id, targets: ["vda"], references: ["vda": guest.reference("vda")], label: label)
        }

        @Test(
            "--all backs up every domain, running or shut off; a locked one fails in one line, exit 1, and the JSON lists all three; --exclude-domain leaves one out under --parallel 1",
            .timeLimit(.minutes(4)))
        func allDomains() async throws {
            try await LibvirtGuest.run(name: Self.names[0], disks: [("vda", 16 * mib)]) { fx, a in
                let b = try await a.defineSibling(name: Self.names[1], disks: [("vda", 16 * mib)], running: false)
                let c = try await a.defineSibling(name: Self.names[2], disks: [("vda", 16 * mib)], running: false)
                try await a.write("vda", "write -P 0x11 0 1M")
                try await b.writeOffline("vda", "write -P 0x22 1M 1M")
                try await c.writeOffline("vda", "write -P 0x33 2M 1M")

                // Disk targets name different disks of different domains: refused before anything is asked.
                let targets = try await a.pullback([
                    "backup", a.name, b.name, "--disk", "vda", "--repo", a.repo, "--connect", a.uri,
                ])
                #expect(
                    targets.exitCode == 64 && targets.stderrLines.count == 1 && targets.stderr.contains("--disk"),
                    "\(targets)")

                // Every domain left out: one line, nothing backed up.
                let none = try await a.pullback(
                    ["backup", "--all", "--repo", a.repo, "--connect", a.uri]
                        + Self.names.flatMap { ["--exclude-domain", $0] })
                expectCleanFailure(none, mentioning: ["--exclude-domain leaves none of the 3 domains"])
                #expect(none.stdout.isEmpty, "\(none)")

                // c's lock is held (by flock(1), which takes the lock a running backup of c holds).
                let domainFolder = "\(a.repo)/\(c.name)"
                try FileManager.default.createDirectory(atPath: domainFolder, withIntermediateDirectories: true)
                let holder = try fx.spawn(
                    ["flock", "-o", "\(domainFolder)/.lock", "sleep", "60"], label: "lock-holder")
                try await TestSupport.waitUntil(timeout: .seconds(10)) {
                    !(try await fx.run(["flock", "-n", "\(domainFolder)/.lock", "true"])).succeeded
                }
                let first = try await a.pullback(["backup", "--all", "--repo", a.repo, "--connect", a.uri, "--json"])
                holder.kill()
                _ = try await holder.waitForExit(timeout: .seconds(10))
                #expect(first.signal == nil && first.exitCode == 1, "\(first)")
                let report = try JSONDecoder().decode(Report.self, from: Data(first.stdout.utf8))
                #expect(report.domains.map(\.domain) == Self.names && report.failed == 1, "\(first)")
                for guest in [a, b] {
                    let outcome = report.outcome(guest.name)
                    #expect(outcome?.level == "full" && outcome?.domain == guest.name, "\(first)")
                }
                let failure = report.domains.last
                #expect(failure?.outcome == nil && failure?.error?.code == "repository", "\(first)")
                let errors = first.stderrLines.filter { $0.hasPrefix("pullback: error: ") }
                #expect(
                    errors.count == 1
                        && errors.first?.hasPrefix("pullback: error: backup of \(c.name) failed: ") == true
                        && errors.first?.contains(failure?.error?.message ?? "?") == true,
                    "\(first)")
                try await Self.expectRestore(a, at: report.outcome(a.name)?.point, label: "a1")
                try await Self.expectRestore(b, at: report.outcome(b.name)?.point, label: "b1")
                let listed = try await c.list()
                #expect(!listed.contains { $0.domain == c.name }, "a point of the locked domain: \(listed)")
                // Both shut-off domains were started paused for their backup and shut off again.
                let states = [try await b.state(), try await c.state()]
                #expect(states == ["shut off", "shut off"])

                // One at a time, a left out: b continues its chain, c makes its first point; a is not touched.
                try await a.write("vda", "write -P 0x44 4M 1M")
                try await b.writeOffline("vda", "write -P 0x55 5M 1M")
                try await c.writeOffline("vda", "write -P 0x66 6M 1M")
                let second = try await a.pullback([
                    "backup", "--all", "--exclude-domain", a.name, "--parallel", "1", "--repo", a.repo, "--connect",
                    a.uri,
                ])
                try requireSuccess(second)
                let lines = second.stdout.split(whereSeparator: \.isNewline).map(String.init)
                #expect(
                    lines.count == 2 && lines[0].hasPrefix("incremental backup ")
                        && lines[0].contains(" of \(b.name): vda ") && lines[1].hasPrefix("full backup ")
                        && lines[1].contains(" of \(c.name): vda "),
                    "\(second)")
                let points = try await a.list()
                #expect(points.filter { $0.domain == a.name }.count == 1, "\(points)")
                for guest in [b, c] {
                    let newest = points.last { $0.domain == guest.name }
                    try await Self.expectRestore(guest, at: newest?.id, label: "\(guest.name)-2")
                }
            }
        }
    }
}
