import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

extension BackupIntegration {
    /// `pullback prune` on real chains of points of a TCG guest: the points kept restore byte for byte as the disks
    /// were, their images are clean and reach no removed point, `verify` passes, the chain continues; a dry run and
    /// bad input change no byte; a prune killed at any moment leaves only points that restore and verify.
    @Suite("pullback prune", .serialized)
    struct PruneTests {
        /// One object of `pullback prune --json`.
        struct Summary: Decodable {
            let domain: String
            let dryRun: Bool
            let kept: [String]
            let merged: [String]
            let removed: [String]
            let checkpointsRemoved: [String]
            let bytesFreed: Int64

            enum CodingKeys: String, CodingKey {
                case domain, kept, merged, removed
                case dryRun = "dry_run"
                case checkpointsRemoved = "checkpoints_removed"
                case bytesFreed = "bytes_freed"
            }
        }

        /// Every name under `root` with its type, mode, size, modification time and, for files, bytes.
        struct Tree: Equatable {
            struct Entry: Equatable {
                let mode: UInt32
                let size: Int64
                let modified: Int
                let modifiedNanoseconds: Int
                let bytes: Data?
            }
            let entries: [String: Entry]

            init(_ root: String) throws {
                var entries: [String: Entry] = [:]
                for relative in FileManager.default.enumerator(atPath: root)?.compactMap({ $0 as? String }) ?? [] {
                    var info = Glibc.stat()
                    guard lstat(root + "/" + relative, &info) == 0 else { throw HarnessError("lstat \(relative)") }
                    let isFile = info.st_mode & S_IFMT == S_IFREG
                    entries[relative] = Entry(
                        mode: UInt32(info.st_mode), size: Int64(info.st_size), modified: info.st_mtim.tv_sec,
                        modifiedNanoseconds: info.st_mtim.tv_nsec,
                        bytes: isFile ? try FileFacts.contents(root + "/" + relative) : nil)
                }
                self.entries = entries
            }
        }

        /// Four points with known writes between them: a full one and three incrementals, each with the snapshot of
        /// the disks it must restore to.
        static func fourPoints(_ guest: LibvirtGuest) async throws -> [(id: String, snapshot: [String: String])] {
            var points: [(id: String, snapshot: [String: String])] = []
            let writes: [(vda: [String], vdb: [String])] = [
                (["write -P 0x31 0 2M", "write -P 0x32 60M 1M"], ["write -P 0x33 1M 64k"]),
                (["write -P 0x41 4M 64k", "write -z 0 64k"], ["write -P 0x42 33554431 1"]),
                (["write -P 0x51 100k 3", "write -P 0x52 60M 64k"], ["write -P 0x53 8M 64k"]),
                (["write -P 0x61 5M 1M", "write -z 60M 4k"], ["write -z 1M 64k"]),
            ]
            for (index, write) in writes.enumerated() {
                for command in write.vda { try await guest.write("vda", command) }
                for command in write.vdb { try await guest.write("vdb", command) }
                let (summary, _) = try await BackupTests.backup(guest)
                #expect(summary.level == (index == 0 ? "full" : "incremental"), "\(summary)")
                points.append((summary.point, try await guest.snapshot("\(index + 1)")))
            }
            return points
        }

        static func prune(
            _ guest: LibvirtGuest, _ arguments: [String], repo: String? = nil, connect: String? = nil
        ) async throws -> CommandResult {
            try await guest.pullback(
                ["prune", "--repo", repo ?? guest.repo, guest.name, "--connect", connect ?? guest.uri] + arguments)
        }

        static func summary(_ result: CommandResult, sourceLocation: SourceLocation = #_sourceLocation) throws
            -> Summary
        {
            try requireSuccess(result, sourceLocation: sourceLocation)
            let text = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(!text.contains("\n"), "prune --json is not one line: \(result)", sourceLocation: sourceLocation)
            return try JSONDecoder().decode(Summary.self, from: Data(text.utf8))
        }

        /// The manifest of `point` as a JSON object.
        static func manifest(_ guest: LibvirtGuest, _ point: String, repo: String? = nil) throws -> [String: Any] {
            let path = "\(repo ?? guest.repo)/\(guest.name)/\(point)/manifest.json"
            return try JSONSerialization.jsonObject(with: FileFacts.contents(path)) as? [String: Any] ?? [:]
        }

        /// Every listed point of `repo` verifies and restores (raw) byte for byte to its snapshot; returns the ids.
        @discardableResult
        static func expectEveryPointRestores(
            _ guest: LibvirtGuest, repo: String, snapshots: [String: [String: String]], label: String,
            sourceLocation: SourceLocation = #_sourceLocation
        ) async throws -> [String] {
            let listed = try await guest.list(repo: repo).map(\.id)
            #expect(!listed.isEmpty, "\(label): no point listed", sourceLocation: sourceLocation)
            for id in listed {
                let verify = try await guest.pullback(["verify", "--repo", repo, guest.name, "--at", id])
                #expect(verify.succeeded, "\(label): verify \(id): \(verify)", sourceLocation: sourceLocation)
                let folder = guest.fx.target("\(label)-\(id)")
                let restore = try await guest.pullback([
                    "restore", "--repo", repo, guest.name, "--at", id, "--to", folder, "--format", "raw",
                ])
                #expect(restore.succeeded, "\(label): restore \(id): \(restore)", sourceLocation: sourceLocation)
                for (target, reference) in snapshots[id] ?? [:] where restore.succeeded {
                    try await expectSameBytes(
                        guest.fx, "\(folder)/\(target).raw", reference, sourceLocation: sourceLocation)
                }
                try? FileManager.default.removeItem(atPath: folder)
            }
            return listed
        }

        /// `qemu-img check` is clean on every image of `point`, and no image of its chain lies in a removed point.
        static func expectCleanChains(
            _ guest: LibvirtGuest, point: String, removed: [String], sourceLocation: SourceLocation = #_sourceLocation
        ) async throws {
            for disk in guest.disks {
                let image = "\(guest.repo)/\(guest.name)/\(point)/\(disk.target).qcow2"
                try await Qemu.expectCheckClean(guest.fx, image, sourceLocation: sourceLocation)
                let chain = try await Qemu.chain(image, using: guest.fx)
                for layer in chain {
                    #expect(
                        !removed.contains { layer.filename.contains("/\($0)/") }, "\(image) reaches \(layer.filename)",
                        sourceLocation: sourceLocation)
                }
            }
        }

        @Test(
            "--keep 2 of four points: the oldest kept becomes a synthetic full; both restore, check and verify; a dry run changes nothing; the chain continues",
            .timeLimit(.minutes(5)), arguments: [LibvirtDriver.embedded, .daemon])
        func keepTwo(driver: LibvirtDriver) async throws {
            try await LibvirtGuest.run(driver: driver) { fx, guest in
                let points = try await Self.fourPoints(guest)
                let ids = points.map(\.id)

                let before = try Tree(guest.repo)
                let dry = try Self.summary(try await Self.prune(guest, ["--keep", "2", "--dry-run", "--json"]))
                #expect(dry.dryRun && dry.kept == Array(ids[2...]) && dry.merged == [ids[2]], "\(dry)")
                #expect(dry.removed == [ids[1], ids[0]], "a point goes before the one it is based on: \(dry)")
                #expect(dry.bytesFreed > 0, "\(dry)")
                let text = try await Self.prune(guest, ["--keep", "2", "--dry-run"])
                try requireSuccess(text)
                #expect(text.stdout.contains("would remove  \(ids[0])"), "\(text.stdout)")
                #expect(try Tree(guest.repo) == before, "a dry run changed the repository")

                let checkpoints = try await guest.checkpoints()
                let pruned = try Self.summary(try await Self.prune(guest, ["--keep", "2", "--json"]))
                #expect(!pruned.dryRun && pruned.kept == Array(ids[2...]) && pruned.merged == [ids[2]], "\(pruned)")
                #expect(pruned.removed == [ids[1], ids[0]] && pruned.bytesFreed > 0, "\(pruned)")
                // The dry run counted the merged images too: the full point the merge writes, sized from its tables.
                #expect(
                    abs(dry.bytesFreed - pruned.bytesFreed) <= 64 * 1024,
                    "the dry run said \(dry.bytesFreed) bytes would be freed, the prune freed \(pruned.bytesFreed)")
                #expect(try await guest.list().map(\.id) == Array(ids[2...]))
                #expect(try await guest.list().map(\.level) == ["full", "incremental"])
                #expect(
                    try FileFacts.listing("\(guest.repo)/\(guest.name)") == [".lock", ids[2], ids[3]],
                    "removed points or unfinished work left")
                let synthetic = try Self.manifest(guest, ids[2])
                #expect(synthetic["synthetic"] as? Bool == true && synthetic["parent"] == nil, "\(synthetic)")
                #expect(synthetic["originalParent"] as? String == ids[1], "\(synthetic)")
                #expect(
                    try FileFacts.listing("\(guest.repo)/\(guest.name)/\(ids[2])")
                        == [
                            "checkpoint.xml", "domain.xml", "manifest.json", "vda.blocks", "vda.qcow2", "vdb.blocks",
                            "vdb.qcow2",
                        ])
                // Checkpoints of kept points stay (the older ones were already gone after the last backup).
                #expect(try await guest.checkpoints().sorted() == checkpoints.sorted())

                for (index, point) in points.enumerated().dropFirst(2) {
                    try await Self.expectCleanChains(guest, point: point.id, removed: Array(ids[..<2]))
                    try await BackupTests.expectRestores(
                        guest, at: point.id, matching: point.snapshot, label: "kept\(index)")
                    try requireSuccess(
                        try await guest.pullback(["verify", "--repo", guest.repo, guest.name, "--at", point.id]))
                }
                try await BackupTests.expectRepositoryImages(
                    guest, point: ids[2], parent: nil, matching: points[2].snapshot)
                try await BackupTests.expectRepositoryImages(
                    guest, point: ids[3], parent: ids[2], matching: points[3].snapshot)

                // The next backup continues from the newest point.
                try await guest.write("vda", "write -P 0x71 7M 64k")
                let (next, _) = try await BackupTests.backup(guest)
                let snap5 = try await guest.snapshot("5")
                #expect(next.level == "incremental" && next.parent == ids[3], "\(next)")
                #expect((next.disk("vda")?.bytesRead ?? 0) <= Int64(mib), "\(next)")
                try await BackupTests.expectRestores(guest, at: next.point, matching: snap5, label: "next")

                // --keep 1: the newest point, incremental, is merged itself; the removed point's checkpoint goes, the
                // kept one's stays, and the next backup is still incremental.
                let last = try Self.summary(try await Self.prune(guest, ["--keep", "1", "--json"]))
                #expect(last.kept == [next.point] && last.merged == [next.point], "\(last)")
                #expect(last.removed == [ids[3], ids[2]] && last.checkpointsRemoved.count == 1, "\(last)")
                let remaining = try await guest.checkpoints()
                #expect(remaining.contains(next.checkpoint) && !remaining.contains(last.checkpointsRemoved[0]))
                try await Self.expectCleanChains(guest, point: next.point, removed: ids)
                try await BackupTests.expectRestores(guest, at: next.point, matching: snap5, label: "merged-newest")
                try await guest.write("vdb", "write -P 0x72 3M 64k")
                let (after, _) = try await BackupTests.backup(guest)
                let snap6 = try await guest.snapshot("6")
                #expect(after.level == "incremental" && after.parent == next.point, "\(after)")
                try await BackupTests.expectRestores(guest, at: after.point, matching: snap6, label: "after")
                try requireSuccess(try await guest.pullback(["verify", "--repo", guest.repo, guest.name]))
            }
        }

        @Test(
            "SIGKILL at several moments of a prune: every listed point restores and verifies; the next prune finishes; SIGINT cleans up",
            .timeLimit(.minutes(8)))
        func killed() async throws {
            try await LibvirtGuest.run { fx, guest in
                let points = try await Self.fourPoints(guest)
                let ids = points.map(\.id)
                let snapshots = Dictionary(uniqueKeysWithValues: points.map { ($0.id, $0.snapshot) })
                let domain = { (repo: String) in "\(repo)/\(guest.name)" }
                // Moments seen from outside: the staged rewrite exists, the point was swapped (its manifest says
                // synthetic), a removal is under way; then plain delays after the start.
                let moments: [(String, (String) -> Bool)] = [
                    (
                        "staging",
                        { repo in
                            ((try? FileFacts.listing(domain(repo))) ?? []).contains { $0.hasSuffix(".rewrite.partial") }
                        }
                    ),
                    (
                        "swapped",
                        { repo in
                            (try? FileFacts.contents("\(domain(repo))/\(ids[2])/manifest.json"))
                                .map { String(decoding: $0, as: UTF8.self).contains("synthetic") } ?? false
                        }
                    ),
                    (
                        "removing",
                        { repo in
                            ((try? FileFacts.listing(domain(repo))) ?? []).contains { $0.hasSuffix(".removed.partial") }
                        }
                    ),
                ]
                // `prune --keep 2` in the background, of a copy of the repository at `repo`. Not through the guest's
                // libvirt: a copy's prune must not touch the domain (libvirt is the last step).
                func startPruneOfCopy(_ repo: String) async throws -> ChildProcess {
                    try await RepositoryEdits.copy(fx, guest.repo, to: repo)
                    return try fx.spawn(
                        [
                            try Pullback.binaryPath(), "prune", "--repo", repo, guest.name, "--keep", "2", "--connect",
                            "test:///default",
                        ], label: "prune-of-copy")
                }
                let delays = [0, 25, 50, 75, 90, 100, 110, 120, 135, 150, 200]
                var seen: [String] = []
                for run in 0..<(moments.count + delays.count) {
                    let repo = fx.path("copy\(run)")
                    let child = try await startPruneOfCopy(repo)
                    if run < moments.count {
                        let ready = moments[run].1
                        try await TestSupport.waitUntil(timeout: .seconds(30), every: .microseconds(200)) {
                            !child.isRunning || ready(repo)
                        }
                    } else {
                        try await Task.sleep(for: .milliseconds(delays[run - moments.count]))
                    }
                    child.kill()
                    let result = try await child.waitForExit(timeout: .seconds(30))
                    let listed = try await Self.expectEveryPointRestores(
                        guest, repo: repo, snapshots: snapshots, label: "killed\(run)")
                    let leftovers = try FileFacts.listing(domain(repo)).filter { $0.hasSuffix(".partial") }
                    let swapped = (try? Self.manifest(guest, ids[2], repo: repo))?["synthetic"] != nil
                    seen.append(
                        "\(result.signal == SIGKILL ? "killed" : "finished"): \(listed.count) listed, "
                            + "\(swapped ? "merged" : "not merged"), \(leftovers.count) unfinished")

                    let again = try Self.summary(
                        try await Self.prune(guest, ["--keep", "2", "--json"], repo: repo, connect: "test:///default"))
                    #expect(again.kept == Array(ids[2...]), "\(again)")
                    #expect(try FileFacts.listing(domain(repo)) == [".lock", ids[2], ids[3]], "run \(run)")
                    #expect((try Self.manifest(guest, ids[2], repo: repo))["synthetic"] as? Bool == true)
                    try await Self.expectEveryPointRestores(
                        guest, repo: repo, snapshots: snapshots, label: "finished\(run)")
                    try? FileManager.default.removeItem(atPath: repo)
                }
                print("prune killed at: " + seen.joined(separator: "; "))
                // Some kill landed before the prune was done (the moments polled for are short, and may be missed).
                #expect(seen.contains { $0.hasPrefix("killed") && !$0.contains("2 listed, merged, 0") }, "\(seen)")

                // SIGINT while the rewrite is staged: exit 130, one line, and the prune's own folders removed.
                let repo = fx.path("interrupted")
                let child = try await startPruneOfCopy(repo)
                try await TestSupport.waitUntil(timeout: .seconds(30), every: .microseconds(200)) {
                    !child.isRunning || moments[0].1(repo)
                }
                child.interrupt()
                let interrupted = try await child.waitForExit(timeout: .seconds(30))
                expectCleanFailure(interrupted, exitCode: 130, mentioning: ["interrupt"])
                #expect(try FileFacts.listing(domain(repo)).filter { $0.hasSuffix(".partial") }.isEmpty)
                try await Self.expectEveryPointRestores(
                    guest, repo: repo, snapshots: snapshots, label: "interrupted")
            }
        }

        @Test(
            "--keep-within picks points by their start; bad input, a held lock or a damaged chain is one line and touches nothing; an unreachable domain is a note",
            .timeLimit(.minutes(5)))
        func keepWithinAndBadInput() async throws {
            try await LibvirtGuest.run { fx, guest in
                let points = try await Self.fourPoints(guest)
                let ids = points.map(\.id)

                let before = try Tree(guest.repo)
                for arguments in [
                    ["--keep", "0"], ["--keep", "2", "--keep-within", "1d"], [], ["--keep-within", "7x"],
                    ["--keep-within", "0d"], ["--keep-within", "12"], ["--keep-within", "1d\u{1b}[2J"],
                ] {
                    let result = try await Self.prune(guest, arguments)
                    expectCleanFailure(result, exitCode: 64, mentioning: ["--keep"])
                    #expect(!result.stderr.contains("\u{1b}"), "\(result)")
                }
                let unknown = try await guest.pullback([
                    "prune", "--repo", guest.repo, "no-such-domain", "--keep", "1", "--connect", guest.uri,
                ])
                expectCleanFailure(unknown, mentioning: ["no-such-domain"])
                let notRepository = try await guest.pullback([
                    "prune", "--repo", fx.path("nowhere"), guest.name, "--keep", "1", "--connect", guest.uri,
                ])
                expectCleanFailure(notRepository, mentioning: ["not a Pullback repository"])
                #expect(try Tree(guest.repo) == before, "bad input changed the repository")
                #expect(!FileFacts.exists(fx.path("nowhere")))

                // Starts moved back: 3 days, 2 days, 30 hours ago; the newest stays now.
                let now = Date()
                for (index, hours) in [72.0, 48, 30].enumerated() {
                    let started = ISO8601DateFormatter().string(from: now.addingTimeInterval(-hours * 3600))
                    try RepositoryEdits.editJSON("\(guest.repo)/\(guest.name)/\(ids[index])/manifest.json") {
                        $0["started"] = started
                    }
                }
                let day = try Self.summary(try await Self.prune(guest, ["--keep-within", "1d", "--dry-run", "--json"]))
                #expect(day.kept == [ids[3]] && day.merged == [ids[3]], "\(day)")
                let minute = try Self.summary(
                    try await Self.prune(guest, ["--keep-within", "1m", "--dry-run", "--json"]))
                #expect(minute.kept == [ids[3]], "the newest point is always kept: \(minute)")
                let week = try Self.summary(
                    try await Self.prune(guest, ["--keep-within", "1w", "--dry-run", "--json"]))
                #expect(week.kept == ids && week.removed.isEmpty && week.merged.isEmpty, "\(week)")

                // While a backup (here flock(1), which takes the same lock) holds the domain, a prune is refused.
                let holder = try fx.spawn(
                    ["flock", "-o", "\(guest.repo)/\(guest.name)/.lock", "sleep", "60"], label: "lock-holder")
                try await TestSupport.waitUntil(timeout: .seconds(10)) {
                    let probe = try await fx.run(["flock", "-n", "\(guest.repo)/\(guest.name)/.lock", "true"])
                    return !probe.succeeded
                }
                let unlocked = try Tree(guest.repo)
                let locked = try await Self.prune(guest, ["--keep", "1"], connect: "test:///default")
                expectCleanFailure(locked, mentioning: ["another backup or prune", "running"])
                #expect(try Tree(guest.repo) == unlocked, "a refused prune changed the repository")
                holder.kill()
                _ = try await holder.waitForExit(timeout: .seconds(10))

                // A damaged image in the chain of the point to be merged: refused before anything changes.
                let lockless = { (tree: Tree) in tree.entries.filter { !$0.key.hasSuffix("/.lock") } }
                let damaged = "\(guest.repo)/\(guest.name)/\(ids[0])/vda.qcow2"
                let offset = UInt64(try FileFacts.size(damaged) / 2)
                let byte = try FileFacts.bytes(damaged, at: offset, count: 1)
                try FileFacts.overwrite(damaged, at: offset, with: Data([byte[0] ^ 0xff]))
                let damagedTree = try Tree(guest.repo)
                let refused = try await Self.prune(guest, ["--keep-within", "50h"], connect: "test:///default")
                expectCleanFailure(refused, mentioning: [damaged, "damaged"])
                #expect(
                    lockless(try Tree(guest.repo)) == lockless(damagedTree), "a refused prune changed the repository")
                try FileFacts.overwrite(damaged, at: offset, with: byte)

                // For real, with a libvirt that does not know the domain: one note, and the prune goes on.
                let result = try await Self.prune(
                    guest, ["--keep-within", "50h", "--json"], connect: "test:///default")
                let pruned = try Self.summary(result)
                #expect(pruned.kept == Array(ids[1...]) && pruned.merged == [ids[1]], "\(pruned)")
                #expect(pruned.removed == [ids[0]], "\(pruned)")
                #expect(result.stderrLines.count == 1 && result.stderr.contains(guest.name), "\(result)")
                try await Self.expectEveryPointRestores(
                    guest, repo: guest.repo,
                    snapshots: Dictionary(uniqueKeysWithValues: points.map { ($0.id, $0.snapshot) }), label: "within")
                try await Self.expectCleanChains(guest, point: ids[3], removed: [ids[0]])
            }
        }
    }
}
