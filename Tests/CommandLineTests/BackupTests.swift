import Foundation
import Testing

extension CopyIntegration {
    /// `pullback backup`, `list` and `restore` against a TCG guest under libvirt's embedded QEMU driver (and, for the
    /// chain of three, a libvirtd as well). Every
    /// restored image is compared byte for byte with a reference raw file that received the same writes as the guest,
    /// copied right after each backup.
    @Suite("pullback backup, list, restore", .serialized)
    struct BackupTests {
        // MARK: helpers

        /// Restores point `id` in qcow2 and in raw form into `out/<label>-qcow2/` and `out/<label>-raw/` and checks
        /// every disk against `snapshot`: `cmp` for raw, `qemu-img compare` plus `check` and "no backing file" for
        /// qcow2.
        static func expectRestores(
            _ guest: LibvirtGuest,
            at id: String,
            matching snapshot: [String: String],
            label: String,
            repo: String? = nil,
            sourceLocation: SourceLocation = #_sourceLocation
        ) async throws {
            let fx = guest.fx
            let repo = repo ?? guest.repo
            let qcow2Dir = fx.target("\(label)-qcow2")
            let restoreQCOW2 = try await guest.pullback([
                "restore", "--repo", repo, guest.name, "--at", id, "--to", qcow2Dir,
            ])
            try requireSuccess(restoreQCOW2, sourceLocation: sourceLocation)
            let rawDir = fx.target("\(label)-raw")
            let restoreRaw = try await guest.pullback([
                "restore", "--repo", repo, guest.name, "--at", id, "--to", rawDir, "--format", "raw",
            ])
            try requireSuccess(restoreRaw, sourceLocation: sourceLocation)

            let targets = guest.disks.map(\.target).sorted()
            #expect(
                try FileFacts.listing(qcow2Dir) == targets.map { "\($0).qcow2" }, "restored qcow2 files of \(id)",
                sourceLocation: sourceLocation)
            #expect(
                try FileFacts.listing(rawDir) == targets.map { "\($0).raw" }, "restored raw files of \(id)",
                sourceLocation: sourceLocation)
            for target in targets {
                guard let reference = snapshot[target] else { continue }
                let raw = "\(rawDir)/\(target).raw"
                try await expectSameBytes(fx, raw, reference, sourceLocation: sourceLocation)
                let qcow2 = "\(qcow2Dir)/\(target).qcow2"
                try await Qemu.expectCheckClean(fx, qcow2, sourceLocation: sourceLocation)
                try await Qemu.expectIdentical(fx, qcow2, reference, sourceLocation: sourceLocation)
                let chain = try await Qemu.chain(qcow2, using: fx)
                #expect(
                    chain.count == 1 && chain.first?.backingFilename == nil,
                    "restored \(qcow2) is not standalone: \(chain.map(\.filename))", sourceLocation: sourceLocation)
            }
        }

        /// The point's repository images: `qemu-img check` is clean and the image with its chain reads as `snapshot`.
        static func expectRepositoryImages(
            _ guest: LibvirtGuest,
            point: String,
            parent: String?,
            matching snapshot: [String: String],
            repo: String? = nil,
            sourceLocation: SourceLocation = #_sourceLocation
        ) async throws {
            let fx = guest.fx
            let folder = "\(repo ?? guest.repo)/\(guest.name)/\(point)"
            for disk in guest.disks {
                let image = "\(folder)/\(disk.target).qcow2"
                try await Qemu.expectCheckClean(fx, image, sourceLocation: sourceLocation)
                if let reference = snapshot[disk.target] {
                    try await Qemu.expectIdentical(fx, image, reference, sourceLocation: sourceLocation)
                }
                let chain = try await Qemu.chain(image, using: fx)
                if let parent {
                    #expect(
                        chain.first?.backingFilename == "../\(parent)/\(disk.target).qcow2",
                        "\(image) backing file: \(String(describing: chain.first?.backingFilename))",
                        sourceLocation: sourceLocation)
                } else {
                    #expect(
                        chain.count == 1, "the full image \(image) has a backing file: \(chain.map(\.filename))",
                        sourceLocation: sourceLocation)
                }
            }
        }

        /// Every file under `dir` (recursively), as paths relative to it.
        static func allFiles(_ dir: String) -> [String] {
            guard let walker = FileManager.default.enumerator(atPath: dir) else { return [] }
            return walker.compactMap { $0 as? String }.sorted()
        }

        /// Runs a successful backup and decodes its summary.
        static func backup(
            _ guest: LibvirtGuest, _ extra: [String] = [], sourceLocation: SourceLocation = #_sourceLocation
        ) async throws -> (BackupSummary, CommandResult) {
            let result = try await guest.backup(extra)
            try requireSuccess(result, sourceLocation: sourceLocation)
            return (try BackupSummary.decode(result), result)
        }

        // MARK: tests

        @Test(
            "Full, incremental, incremental: every point restores (qcow2 and raw) to the disks as they were",
            .timeLimit(.minutes(3)), arguments: [LibvirtDriver.embedded, .daemon])
        func chainOfThree(driver: LibvirtDriver) async throws {
            try await LibvirtGuest.run(driver: driver) { fx, guest in
                try await guest.write("vda", "write -P 0x5a 1M 128k", "write -P 0x11 8M 8M")
                try await guest.write("vdb", "write -P 0x22 0 1M")

                let (full, _) = try await Self.backup(guest)
                let snap1 = try await guest.snapshot("1")
                #expect(full.level == "full", "\(full)")
                #expect(full.parent == nil, "\(full)")
                #expect(full.domain == guest.name)
                #expect(full.disks.map(\.target).sorted() == ["vda", "vdb"], "\(full)")
                #expect(full.disks.allSatisfy { $0.mode == "full" }, "\(full)")
                #expect(full.skipped.isEmpty, "\(full)")
                #expect(
                    (full.disk("vda")?.bytesRead ?? 0) >= Int64(8 * mib + 128 * kib), "full read too little: \(full)")
                try await guest.expectNoJob()

                // Zeros over data, writes across 64 KiB cluster boundaries, the last bytes of each disk.
                try await guest.write(
                    "vda", "write -z 1M 64k", "write -P 0x33 65535 3", "write -P 0x44 67108863 1",
                    "write -P 0x45 12M 100k")
                try await guest.write("vdb", "write -P 0x55 33554431 1", "write -P 0x66 131071 2")
                let (inc1, _) = try await Self.backup(guest)
                let snap2 = try await guest.snapshot("2")
                #expect(inc1.level == "incremental", "\(inc1)")
                #expect(inc1.parent == full.point, "\(inc1)")
                #expect(inc1.point != full.point)
                #expect(inc1.disks.allSatisfy { $0.mode == "incremental" }, "\(inc1)")
                let inc1Read = inc1.disk("vda")?.bytesRead ?? -1
                #expect(inc1Read >= Int64(64 * kib) && inc1Read <= Int64(2 * mib), "vda read: \(inc1)")
                try await guest.expectNoJob()

                // Only vda changes: a partial overwrite of the full's data and a write across a boundary. vdb is
                // untouched.
                try await guest.write("vda", "write -P 0x77 9M 64k", "write -P 0x88 200000 70000", "write -z 8M 4k")
                let (inc2, _) = try await Self.backup(guest, ["--level", "incremental"])
                let snap3 = try await guest.snapshot("3")
                #expect(inc2.level == "incremental", "\(inc2)")
                #expect(inc2.parent == inc1.point, "\(inc2)")
                #expect(inc2.disk("vdb")?.bytesRead == 0, "untouched vdb was read: \(inc2)")
                let inc2Read = inc2.disk("vda")?.bytesRead ?? -1
                #expect(inc2Read >= Int64(134_000) && inc2Read <= Int64(mib), "vda read: \(inc2)")
                try await guest.expectNoJob()

                // list --json: three points, linked.
                let points = try await guest.list()
                #expect(points.map(\.id) == [full.point, inc1.point, inc2.point], "\(points)")
                #expect(points.map(\.level) == ["full", "incremental", "incremental"], "\(points)")
                #expect(points.map(\.parent) == [nil, full.point, inc1.point], "\(points)")
                #expect(points.allSatisfy { $0.domain == guest.name && $0.disks.sorted() == ["vda", "vdb"] })
                let domainOnly = try await guest.pullback(["list", "--repo", guest.repo, guest.name, "--json"])
                try requireSuccess(domainOnly)

                // Folder layout.
                for point in [full.point, inc1.point, inc2.point] {
                    #expect(
                        try FileFacts.listing("\(guest.repo)/\(guest.name)/\(point)")
                            == [
                                "checkpoint.xml", "domain.xml", "manifest.json", "vda.blocks", "vda.qcow2",
                                "vdb.blocks", "vdb.qcow2",
                            ])
                }

                // Repository images: clean, chained, reading as the disks did.
                try await Self.expectRepositoryImages(guest, point: full.point, parent: nil, matching: snap1)
                try await Self.expectRepositoryImages(guest, point: inc1.point, parent: full.point, matching: snap2)
                try await Self.expectRepositoryImages(guest, point: inc2.point, parent: inc1.point, matching: snap3)

                // Incremental images hold about the dirty clusters only.
                let fullSize = try FileFacts.size("\(guest.repo)/\(guest.name)/\(full.point)/vda.qcow2")
                let inc2Size = try FileFacts.size("\(guest.repo)/\(guest.name)/\(inc2.point)/vda.qcow2")
                #expect(fullSize >= Int64(8 * mib), "full vda image is \(fullSize) bytes")
                #expect(inc2Size < Int64(2 * mib), "incremental vda image is \(inc2Size) bytes for ~200 KiB dirty")
                let inc2VdbSize = try FileFacts.size("\(guest.repo)/\(guest.name)/\(inc2.point)/vdb.qcow2")
                #expect(inc2VdbSize < Int64(mib), "unchanged vdb overlay is \(inc2VdbSize) bytes")

                // Every point restores to what the disks held when it was taken; latest is the last.
                try await Self.expectRestores(guest, at: full.point, matching: snap1, label: "p1")
                try await Self.expectRestores(guest, at: inc1.point, matching: snap2, label: "p2")
                try await Self.expectRestores(guest, at: inc2.point, matching: snap3, label: "p3")
                try await Self.expectRestores(guest, at: "latest", matching: snap3, label: "latest")

                // The snapshots really differ, so a restore of the wrong point would fail.
                let differ = try await fx.run(["cmp", "-s", snap2["vda"]!, snap3["vda"]!])
                #expect(!differ.succeeded, "snapshots 2 and 3 of vda are equal; the test would not notice a mix-up")
            }
        }

        @Test(
            "Two repositories and another tool back up one domain: each chain continues, no one's checkpoint is lost",
            .timeLimit(.minutes(3)))
        func sharedDomain() async throws {
            try await LibvirtGuest.run { fx, guest in
                let second = fx.path("repo2")
                let backupInto = { (repo: String) async throws -> BackupSummary in
                    let result = try await guest.backup([], repo: repo)
                    try requireSuccess(result)
                    return try BackupSummary.decode(result)
                }
                try await guest.virshChecked(["checkpoint-create-as", guest.name, "othertool-1"])
                try await guest.write("vda", "write -P 0x21 0 1M")
                let a1 = try await backupInto(guest.repo)
                let b1 = try await backupInto(second)
                #expect(a1.level == "full" && b1.level == "full", "\(a1) \(b1)")
                #expect(a1.checkpoint.prefix(17) != b1.checkpoint.prefix(17), "one tag for two repositories")

                try await guest.write("vda", "write -P 0x22 2M 64k")
                let a2 = try await backupInto(guest.repo)
                let snapA2 = try await guest.snapshot("a2")
                try await guest.write("vda", "write -P 0x23 3M 64k", "write -z 0 4k")
                try await guest.write("vdb", "write -P 0x24 5M 3")
                let b2 = try await backupInto(second)
                let snapB2 = try await guest.snapshot("b2")
                try await guest.write("vdb", "write -P 0x25 6M 64k")
                let a3 = try await backupInto(guest.repo)
                let snapA3 = try await guest.snapshot("a3")
                #expect(a2.parent == a1.point && a3.parent == a2.point, "\(a2) \(a3)")
                #expect(b2.parent == b1.point, "\(b2)")
                // b2 covers every write since b1, also those repository A already took.
                #expect((b2.disk("vda")?.bytesRead ?? 0) >= Int64(128 * kib), "\(b2)")

                // Each repository keeps its newest two checkpoints (the older is removed by the next run); the other
                // tool's stays.
                #expect(
                    try await guest.checkpoints().sorted()
                        == [a2.checkpoint, a3.checkpoint, b1.checkpoint, b2.checkpoint, "othertool-1"].sorted())

                try await Self.expectRestores(guest, at: a2.point, matching: snapA2, label: "a2")
                try await Self.expectRestores(guest, at: a3.point, matching: snapA3, label: "a3")
                try await Self.expectRestores(guest, at: b2.point, matching: snapB2, label: "b2", repo: second)
                try await Self.expectRepositoryImages(
                    guest, point: b2.point, parent: b1.point, matching: snapB2, repo: second)
            }
        }

        @Test("A repository moved elsewhere restores every point identically", .timeLimit(.minutes(2)))
        func movedRepository() async throws {
            try await LibvirtGuest.run { fx, guest in
                try await guest.write("vda", "write -P 0x31 0 3M")
                try await guest.write("vdb", "write -P 0x32 5M 1M")
                let (full, _) = try await Self.backup(guest)
                let snap1 = try await guest.snapshot("1")
                try await guest.write("vda", "write -P 0x41 1M 65537", "write -z 2M 64k")
                let (inc, _) = try await Self.backup(guest)
                let snap2 = try await guest.snapshot("2")
                #expect(inc.level == "incremental" && inc.parent == full.point, "\(inc)")

                let moved = try fx.makeDirectory("elsewhere/deeper") + "/moved-repo"
                try await fx.runChecked(["mv", guest.repo, moved])
                #expect(!FileFacts.exists(guest.repo))

                let points = try await guest.list(repo: moved)
                #expect(points.map(\.id) == [full.point, inc.point], "\(points)")
                try await Self.expectRepositoryImages(
                    guest, point: inc.point, parent: full.point, matching: snap2, repo: moved)
                try await Self.expectRestores(guest, at: full.point, matching: snap1, label: "m1", repo: moved)
                try await Self.expectRestores(guest, at: inc.point, matching: snap2, label: "m2", repo: moved)
            }
        }

        @Test(
            "Errors: --level incremental on an empty repository, unknown domain, unknown --at",
            .timeLimit(.minutes(2)))
        func errors() async throws {
            try await LibvirtGuest.run { fx, guest in
                try await guest.write("vda", "write -P 0x61 0 64k")

                let forced = try await guest.backup(["--level", "incremental"])
                expectCleanFailure(forced)
                #expect(forced.stdout.isEmpty, "stdout of a failed backup: \(forced)")
                let emptyList = try await guest.pullback(["list", "--repo", guest.repo, "--json"])
                if emptyList.succeeded {
                    let points = try JSONDecoder().decode([ListedPoint].self, from: Data(emptyList.stdout.utf8))
                    #expect(points.isEmpty, "a point was listed after a refused backup: \(points)")
                }
                let left = Self.allFiles(guest.repo).filter { $0.hasSuffix(".partial") || $0.contains(".partial/") }
                #expect(left.isEmpty, "partial folders left: \(left)")
                try await guest.expectNoJob()
                #expect(try await guest.checkpoints().isEmpty, "a checkpoint was created by a refused backup")

                let unknown = try await guest.pullback([
                    "backup", "no-such-domain", "--repo", guest.repo, "--connect", guest.uri,
                ])
                expectCleanFailure(unknown, mentioning: ["no-such-domain"])

                let (full, _) = try await Self.backup(guest)
                try await guest.write("vda", "write -P 0x62 1M 64k")
                let (inc, _) = try await Self.backup(guest)
                let badAt = try await guest.pullback([
                    "restore", "--repo", guest.repo, guest.name, "--at", "19990101T000000Z", "--to", fx.target("bad"),
                ])
                expectCleanFailure(badAt, mentioning: ["19990101T000000Z", full.point, inc.point])
                #expect(!FileFacts.exists(fx.target("bad/vda.qcow2")), "restore with a bad --at wrote an image")

                let unknownDomainRestore = try await guest.pullback([
                    "restore", "--repo", guest.repo, "no-such-domain", "--to", fx.target("bad2"),
                ])
                expectCleanFailure(unknownDomainRestore)
            }
        }

        @Test(
            "SIGINT during a full and an incremental backup: exit 130, no point, no partial, no job; the next is right",
            .timeLimit(.minutes(3)))
        func interrupted() async throws {
            try await LibvirtGuest.run(disks: [("vda", 512 * mib)]) { fx, guest in
                try await guest.write("vda", "write -P 0x71 0 256M")

                let interruptOnce = { (extra: [String]) async throws -> CommandResult in
                    let child = try guest.startBackup(extra)
                    // SIGINT mid-copy: once more than 4 MiB have reached the point's .partial folder, the backup is
                    // stopped (SIGSTOP) so that it cannot finish before the signal lands, interrupted, and let go on.
                    try await BackupFailureTests.waitUntil(child, seconds: 60) {
                        BackupFailureTests.pendingBytes(guest) > Int64(4 * mib)
                    }
                    child.suspend()
                    try #require(
                        child.isRunning, "the backup ended before SIGINT; the disk is not big enough: \(child.result())"
                    )
                    child.interrupt()
                    child.resume()
                    return try await child.waitForExit(timeout: .seconds(30))
                }

                // No repository yet: `list` refuses the folder until a backup has made it.
                let before: [String] = []
                let first = try await interruptOnce([])
                #expect(first.exitCode == 130 && first.signal == nil, "\(first)")
                #expect(
                    first.stderrLines.last?.hasPrefix("pullback: error: ") == true
                        && first.stderr.lowercased().contains("interrupt"),
                    "\(first)")
                #expect(try await guest.list().map(\.id) == before, "a point appeared after SIGINT")
                #expect(
                    Self.allFiles(guest.repo).filter { $0.contains("partial") }.isEmpty, "\(Self.allFiles(guest.repo))")
                try await guest.expectNoJob()

                let (full, _) = try await Self.backup(guest)
                let snap1 = try await guest.snapshot("1")
                #expect(full.level == "full", "\(full)")
                try await Self.expectRestores(guest, at: full.point, matching: snap1, label: "after-full")

                // Now an incremental with much dirty data, interrupted; then the next incremental.
                try await guest.write("vda", "write -P 0x72 256M 200M", "write -P 0x73 10M 64k")
                let second = try await interruptOnce([])
                #expect(second.exitCode == 130 && second.signal == nil, "\(second)")
                #expect(try await guest.list().map(\.id) == [full.point], "a point appeared after SIGINT")
                #expect(
                    Self.allFiles(guest.repo).filter { $0.contains("partial") }.isEmpty, "\(Self.allFiles(guest.repo))")
                try await guest.expectNoJob()

                try await guest.write("vda", "write -P 0x74 20M 64k")
                let (next, _) = try await Self.backup(guest)
                let snap2 = try await guest.snapshot("2")
                #expect(next.parent == full.point, "\(next)")
                try await Self.expectRepositoryImages(guest, point: next.point, parent: next.parent, matching: snap2)
                try await Self.expectRestores(guest, at: next.point, matching: snap2, label: "after-inc")
                try await guest.expectNoJob()
            }
        }

        @Test(
            "A lost checkpoint is redefined from the saved XML and the chain continues correctly",
            .timeLimit(.minutes(2)))
        func lostCheckpoint() async throws {
            try await LibvirtGuest.run { fx, guest in
                try await guest.write("vda", "write -P 0x81 0 1M")
                let (full, _) = try await Self.backup(guest)
                try await guest.write("vda", "write -P 0x82 2M 64k")
                let (inc, _) = try await Self.backup(guest)
                #expect(inc.checkpoint.isEmpty == false)
                try await guest.write("vda", "write -P 0x83 3M 65537")
                try await guest.write("vdb", "write -P 0x84 33554430 2")

                try await guest.virshChecked(["checkpoint-delete", guest.name, inc.checkpoint, "--metadata"])
                #expect(!(try await guest.checkpoints().contains(inc.checkpoint)))

                // Notes reach stderr after a successful run when stderr is not a terminal.
                let result = try await guest.pullback([
                    "backup", guest.name, "--repo", guest.repo, "--connect", guest.uri,
                ])
                try requireSuccess(result)
                let snap = try await guest.snapshot("3")
                #expect(result.stderr.lowercased().contains("redefined"), "stderr: \(result.stderr)")
                let points = try await guest.list()
                try #require(points.count == 3, "\(points)")
                let listed = points[2]
                #expect(listed.level == "incremental" && listed.parent == inc.point, "\(listed)")
                let summary = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(
                    !summary.contains("\n") && summary.contains("incremental") && summary.contains(listed.id),
                    "stdout summary: \(result.stdout)")
                let next = (point: listed.id, level: listed.level, parent: listed.parent)
                #expect(listed.bytes <= Int64(mib), "the incremental after redefining read \(listed.bytes) bytes")
                #expect(try await guest.checkpoints().contains(inc.checkpoint), "checkpoint was not redefined")
                try await Self.expectRepositoryImages(guest, point: next.point, parent: inc.point, matching: snap)
                try await Self.expectRestores(guest, at: next.point, matching: snap, label: "redefined")
                _ = full
            }
        }

        @Test("A shut-off domain is backed up, full then incremental, and stays shut off", .timeLimit(.minutes(2)))
        func shutOff() async throws {
            try await LibvirtGuest.run(running: false) { fx, guest in
                try await guest.writeOffline("vda", "write -P 0x91 0 2M", "write -P 0x92 67108863 1")
                try await guest.writeOffline("vdb", "write -P 0x93 65535 3")
                #expect(try await guest.state() == "shut off")

                let (full, _) = try await Self.backup(guest)
                let snap = try await guest.snapshot("1")
                #expect(full.level == "full", "\(full)")
                #expect(try await guest.state() == "shut off", "the domain did not stay shut off")
                try await Self.expectRepositoryImages(guest, point: full.point, parent: nil, matching: snap)
                try await Self.expectRestores(guest, at: full.point, matching: snap, label: "off")

                // Written offline afterwards (qemu-io updates the images' persistent bitmaps as QEMU would): the
                // next backup continues the chain and reads only what changed.
                try await guest.writeOffline("vda", "write -P 0x94 4M 64k", "write -z 0 4k")
                let (second, _) = try await Self.backup(guest)
                let snap2 = try await guest.snapshot("2")
                #expect(second.level == "incremental" && second.parent == full.point, "\(second)")
                #expect((second.disk("vda")?.bytesRead ?? .max) <= Int64(256 * kib), "\(second)")
                #expect(second.disk("vdb")?.bytesRead == 0, "\(second)")
                #expect(try await guest.state() == "shut off")
                try await Self.expectRepositoryImages(guest, point: second.point, parent: full.point, matching: snap2)
                try await Self.expectRestores(guest, at: second.point, matching: snap2, label: "off2")
            }
        }
    }
}
