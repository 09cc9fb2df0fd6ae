import Foundation
import Testing

extension BackupIntegration {
    /// `pullback checkpoints` on a real TCG guest backed up into two repositories: each checkpoint is listed with the
    /// repository that made it and whether that repository holds a point for it; one repository's checkpoints are
    /// removed and no other's, and the other repository's next backup still continues incrementally and restores byte
    /// for byte; a checkpoint made by hand with a hostile description is printed escaped and nothing it names is
    /// written.
    @Suite("pullback checkpoints", .serialized)
    struct CheckpointsCommandTests {
        /// One object of `pullback checkpoints DOMAIN --json`.
        struct Report: Decodable {
            struct Checkpoint: Decodable, Equatable {
                let name: String
                let tag: String?
                let repository: String?
                let holdsPoint: String
                let detail: String?

                enum CodingKeys: String, CodingKey {
                    case name, tag, repository, detail
                    case holdsPoint = "holds_point"
                }
            }
            let domain: String
            let checkpoints: [Checkpoint]
            let others: Int

            func checkpoint(_ name: String) -> Checkpoint? { checkpoints.first { $0.name == name } }
        }

        /// One object of `pullback checkpoints DOMAIN --remove --json`.
        struct Removal: Decodable {
            let domain: String
            let tag: String
            let repository: String?
            let removed: [String]
            let kept: [String]
            let nextBackupFull: Bool
            let startedDomain: Bool
            let heldElsewhere: [HeldElsewhere]?

            struct HeldElsewhere: Decodable, Equatable {
                let name: String
                let repository: String
                let why: String
            }

            enum CodingKeys: String, CodingKey {
                case domain, tag, repository, removed, kept
                case heldElsewhere = "held_elsewhere"
                case nextBackupFull = "next_backup_full"
                case startedDomain = "started_domain"
            }
        }

        static func checkpoints(_ guest: LibvirtGuest, _ arguments: [String] = []) async throws -> CommandResult {
            try await guest.pullback(["checkpoints", guest.name, "--connect", guest.uri] + arguments)
        }

        static func decoded<T: Decodable>(
            _ type: T.Type, _ result: CommandResult, sourceLocation: SourceLocation = #_sourceLocation
        ) throws -> T {
            try requireSuccess(result, sourceLocation: sourceLocation)
            let text = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(!text.contains("\n"), "--json is not one line: \(result)", sourceLocation: sourceLocation)
            return try JSONDecoder().decode(T.self, from: Data(text.utf8))
        }

        static func report(_ guest: LibvirtGuest, _ arguments: [String] = []) async throws -> Report {
            try decoded(Report.self, try await checkpoints(guest, ["--json"] + arguments))
        }

        /// The tag in a checkpoint name `pullback-<tag>-<point>`.
        static func tag(of checkpoint: String) -> String {
            String(checkpoint.dropFirst("pullback-".count).prefix(8))
        }

        /// Creates a checkpoint of the running guest with virsh, with a bitmap on every disk.
        static func createByHand(_ guest: LibvirtGuest, name: String, description: String) async throws {
            let escaped = description.replacingOccurrences(of: "&", with: "&amp;")
                .replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            let disks = guest.disks.map { "<disk name='\($0.target)' checkpoint='bitmap'/>" }.joined()
            let xml =
                "<domaincheckpoint><name>\(name)</name><description>\(escaped)</description>"
                + "<disks>\(disks)</disks></domaincheckpoint>"
            let path = guest.fx.path("checkpoint-\(UInt32.random(in: 0...UInt32.max)).xml")
            try FileFacts.create(path, with: Data(xml.utf8))
            try await guest.virshChecked(["checkpoint-create", guest.name, path])
        }

        @Test(
            "Two repositories' checkpoints are listed with their folders; one deleted shows as gone, --remove --tag removes only its checkpoints, and the other's next backup is incremental and restores identical",
            .timeLimit(.minutes(3)))
        func twoRepositories() async throws {
            try await LibvirtGuest.run(disks: [("vda", 16 * mib)]) { fx, guest in
                let (repoA, repoB) = (guest.repo, fx.path("repo-b"))
                try await guest.write("vda", "write -P 0x11 0 1M")
                let a1 = try BackupSummary.decode(try await guest.backup(repo: repoA))
                let b1 = try BackupSummary.decode(try await guest.backup(repo: repoB))
                let snapshot1 = try await guest.snapshot("1")
                try await guest.write("vda", "write -P 0x22 4M 64k")
                let a2 = try BackupSummary.decode(try await guest.backup(repo: repoA))
                let b2 = try BackupSummary.decode(try await guest.backup(repo: repoB))
                let snapshot2 = try await guest.snapshot("2")
                #expect([a1.level, b1.level, a2.level, b2.level] == ["full", "full", "incremental", "incremental"])
                let (tagA, tagB) = (Self.tag(of: a1.checkpoint), Self.tag(of: b1.checkpoint))
                #expect(tagA != tagB && Self.tag(of: a2.checkpoint) == tagA && Self.tag(of: b2.checkpoint) == tagB)
                // A backup removes its repository's checkpoints older than its base: two each are left.
                let all = [a1.checkpoint, b1.checkpoint, a2.checkpoint, b2.checkpoint]
                #expect(try await guest.checkpoints().sorted() == all.sorted())

                let both = try await Self.report(guest)
                #expect(both.domain == guest.name && both.others == 0)
                let owners = [(a1, tagA, repoA), (b1, tagB, repoB), (a2, tagA, repoA), (b2, tagB, repoB)]
                #expect(
                    both.checkpoints
                        == owners.map {
                            .init(name: $0.0.checkpoint, tag: $0.1, repository: $0.2, holdsPoint: "yes", detail: nil)
                        }, "\(both)")
                let text = try await Self.checkpoints(guest)
                try requireSuccess(text)
                // Names are padded to the longest (two points in one second get `-2`).
                let width = all.map(\.count).max() ?? 0
                let padded = { (name: String) in name.padding(toLength: width, withPad: " ", startingAt: 0) }
                #expect(
                    text.stdout
                        == owners.map {
                            "\(padded($0.0.checkpoint))  holds a point: yes  repository \($0.1) at \($0.2)\n"
                        }
                        .joined() + "\(guest.name): 4 checkpoints made by pullback, 4 held by a point\n", "\(text)")

                // Repository B is deleted: its checkpoints are listed as gone, A's still as held.
                try FileManager.default.removeItem(atPath: repoB)
                let gone = try await Self.report(guest)
                #expect(gone.checkpoints.map(\.holdsPoint) == ["yes", "gone", "yes", "gone"], "\(gone)")
                #expect(
                    gone.checkpoint(b2.checkpoint)
                        == .init(
                            name: b2.checkpoint, tag: tagB, repository: repoB, holdsPoint: "gone",
                            detail: "nothing is there"), "\(gone)")
                let goneText = try await Self.checkpoints(guest)
                #expect(
                    goneText.stdout.contains(
                        "\(padded(b2.checkpoint))  holds a point: no (repository gone, moved or not mounted: nothing is there; if it moved, use --repo NEWDIR to check it)  repository \(tagB) at \(repoB)\n"
                    ), "\(goneText)")
                #expect(
                    goneText.stdout.hasSuffix(
                        "\(guest.name): 4 checkpoints made by pullback, 2 held by a point, 2 of a repository gone; if repository \(tagB) was deleted, not moved or unmounted, remove its checkpoints with `pullback checkpoints \(guest.name) --remove --tag \(tagB)`\n"
                    ), "\(goneText)")

                // --tag of A, which is still there and holds points for its checkpoints: refused, nothing removed.
                let refused = try await Self.checkpoints(guest, ["--remove", "--tag", tagA])
                expectCleanFailure(refused, mentioning: ["--repo \(repoA)", "--all", "nothing was removed"])
                #expect(try await guest.checkpoints().sorted() == all.sorted())

                let removed = try await Self.checkpoints(guest, ["--remove", "--tag", tagB, "--json"])
                let removal = try Self.decoded(Removal.self, removed)
                #expect(removal.removed == [b1.checkpoint, b2.checkpoint] && removal.kept.isEmpty, "\(removal)")
                // B may only have moved, or be on a disk not mounted: what that means is said.
                #expect(
                    removed.stderr.contains(
                        "a repository of tag \(tagB) that still exists elsewhere (moved, or on a disk not mounted) will make a full backup of \(guest.name) next"
                    ), "\(removed)")
                #expect(removal.tag == tagB && removal.repository == repoB && !removal.startedDomain, "\(removal)")
                #expect(try await guest.checkpoints() == [a1.checkpoint, a2.checkpoint])

                // A continues from its checkpoint and every point of A restores as the disk was.
                try await guest.write("vda", "write -P 0x33 8M 128k", "write -z 0 64k")
                let a3 = try BackupSummary.decode(try await guest.backup(repo: repoA))
                #expect(a3.level == "incremental" && a3.parent == a2.point, "\(a3)")
                #expect((a3.disk("vda")?.bytesRead ?? .max) <= Int64(mib), "\(a3)")
                let snapshots = [a1.point: snapshot1, a2.point: snapshot2, a3.point: try await guest.snapshot("3")]
                let restored = try await PruneTests.expectEveryPointRestores(
                    guest, repo: repoA, snapshots: snapshots,
                    label: "a")
                #expect(restored == [a1.point, a2.point, a3.point])
            }
        }

        @Test(
            "--remove --repo removes only the checkpoints the repository holds no point for, never through a copy of it those the original holds, and takes the domain's lock; --all removes the rest of a shut-off domain's, and the next backup is a full that restores identical; a repository whose path a description cannot hold backs up and is listed",
            .timeLimit(.minutes(4)))
        func removeByRepository() async throws {
            try await LibvirtGuest.run(disks: [("vda", 16 * mib)]) { fx, guest in
                try await guest.write("vda", "write -P 0x44 1M 1M")
                let first = try BackupSummary.decode(try await guest.backup())
                let snapshot1 = try await guest.snapshot("1")
                let tag = Self.tag(of: first.checkpoint)
                // What a run that failed on a shut-off domain leaves: a checkpoint of the repository's tag that no point
                // was made with.
                let stale = "pullback-\(tag)-20200101T000000Z"
                try await Self.createByHand(
                    guest, name: stale, description: "pullback repository \(tag) at \(guest.repo)")
                let listed = try await Self.report(guest)
                #expect(listed.checkpoint(first.checkpoint)?.holdsPoint == "yes", "\(listed)")
                #expect(listed.checkpoint(stale)?.holdsPoint == "no", "\(listed)")

                let kept = try await Self.checkpoints(guest, ["--remove", "--repo", guest.repo])
                try requireSuccess(kept)
                #expect(
                    kept.stdout
                        == """
                        removed  \(stale)
                        kept     \(first.checkpoint)  (the repository holds a point made with it)
                        \(guest.name): removed 1 checkpoint of repository \(tag) (\(guest.repo)), kept 1 that its points were made with (--all removes them too)

                        """, "\(kept)")
                #expect(try await guest.checkpoints() == [first.checkpoint])
                // A copy of the repository has its id (tag), and holds only the first point.
                let copy = fx.path("repo-copy")
                try await fx.runChecked(["cp", "-a", guest.repo, copy])
                try await guest.write("vda", "write -P 0x55 2M 64k")
                let second = try BackupSummary.decode(try await guest.backup())
                #expect(second.level == "incremental" && second.parent == first.point, "\(second)")
                let snapshot2 = try await guest.snapshot("2")
                #expect(try await guest.checkpoints() == [first.checkpoint, second.checkpoint])

                // Through the copy, the original's checkpoints are listed as the original's, and never removed.
                let throughCopy = try await Self.report(guest, ["--repo", copy])
                #expect(
                    throughCopy.checkpoints
                        == [first, second].map {
                            .init(name: $0.checkpoint, tag: tag, repository: guest.repo, holdsPoint: "yes", detail: nil)
                        }, "\(throughCopy)")
                let copyKept = try await Self.checkpoints(guest, ["--remove", "--repo", copy])
                try requireSuccess(copyKept)
                let why = "held by the repository at \(guest.repo), a copy of this one shares its id"
                #expect(
                    copyKept.stdout
                        == """
                        kept     \(first.checkpoint)  (\(why))
                        kept     \(second.checkpoint)  (\(why))
                        \(guest.name): no checkpoint of repository \(tag) (\(copy)) to remove, kept 2 that another repository with its id (a copy) made, which only that one's --repo removes

                        """, "\(copyKept)")
                let copyAll = try Self.decoded(
                    Removal.self, try await Self.checkpoints(guest, ["--remove", "--repo", copy, "--all", "--json"]))
                #expect(copyAll.removed.isEmpty && !copyAll.nextBackupFull, "\(copyAll)")
                #expect(
                    copyAll.heldElsewhere
                        == [first, second].map { .init(name: $0.checkpoint, repository: guest.repo, why: why) },
                    "\(copyAll)")
                #expect(try await guest.checkpoints() == [first.checkpoint, second.checkpoint])

                // A repository the domain was never backed up into: the removal takes the domain's lock there all the
                // same, making the domain's folder as a backup does.
                let fresh = fx.path("repo-fresh")
                try await guest.makeRepository(fresh)
                let none = try await Self.checkpoints(guest, ["--remove", "--repo", fresh])
                try requireSuccess(none)
                #expect(none.stdout.hasSuffix(" to remove\n") && none.stdout.hasPrefix("\(guest.name): no checkpoint"))
                #expect(FileFacts.exists(fresh + "/" + guest.name + "/.lock"), "\(none)")
                #expect(try await guest.checkpoints() == [first.checkpoint, second.checkpoint])

                // virsh's destroy on the embedded driver sometimes says the domain is not running once it has stopped it.
                _ = try await guest.virsh(["destroy", guest.name])
                try #require(try await guest.state() == "shut off")
                let all = try await Self.checkpoints(guest, ["--remove", "--repo", guest.repo, "--all"])
                try requireSuccess(all)
                #expect(
                    all.stdout
                        == """
                        removed  \(first.checkpoint)
                        removed  \(second.checkpoint)
                        \(guest.name): removed 2 checkpoints of repository \(tag) (\(guest.repo)); its next backup of \(guest.name) will be a full

                        """, "\(all)")
                #expect(all.stderr.contains("\(guest.name) is shut off: starting it paused"), "\(all)")
                #expect(try await guest.checkpoints().isEmpty)
                #expect(try await guest.state() == "shut off")
                // The bitmaps went with the checkpoints, not only libvirt's record of them.
                let info = try await fx.runChecked(["qemu-img", "info", "--output=json", guest.image("vda")])
                #expect(!info.stdout.contains("pullback-"), "\(info)")

                try await guest.virshChecked(["start", guest.name])
                try await guest.write("vda", "write -P 0x66 3M 64k")
                let third = try BackupSummary.decode(try await guest.backup())
                #expect(third.level == "full", "\(third)")

                // A control character in the repository's path cannot go in a checkpoint's description: it is left
                // out, the backup works, and its checkpoint is listed as of an unknown repository that --repo checks.
                let control = fx.path("e\u{1}x")
                let odd = try BackupSummary.decode(try await guest.backup(repo: control))
                #expect(odd.level == "full", "\(odd)")
                let unknown = try await Self.report(guest)
                #expect(
                    unknown.checkpoint(odd.checkpoint)
                        == .init(
                            name: odd.checkpoint, tag: Self.tag(of: odd.checkpoint), repository: nil,
                            holdsPoint: "unknown",
                            detail:
                                "its repository's path holds a character a checkpoint's description cannot, and was not recorded"
                        ), "\(unknown)")
                let checked = try await Self.report(guest, ["--repo", control])
                #expect(checked.checkpoint(odd.checkpoint)?.holdsPoint == "yes", "\(checked)")
                #expect(checked.checkpoint(odd.checkpoint)?.repository == control, "\(checked)")
                try await PruneTests.expectEveryPointRestores(
                    guest, repo: guest.repo,
                    snapshots: [
                        first.point: snapshot1, second.point: snapshot2, third.point: try await guest.snapshot("3"),
                    ], label: "r")
            }
        }

        @Test(
            "A checkpoint made by hand whose description names a hostile path is printed escaped, and nothing there is written",
            .timeLimit(.minutes(2)))
        func hostileDescription() async throws {
            try await LibvirtGuest.run(disks: [("vda", 16 * mib)]) { fx, guest in
                // A folder whose name holds a newline, a C1 control (CSI) and a bidirectional override, with a
                // repository.json that is no identity; and the test's real repository under another tag.
                let hostile = fx.path("evil\nline\u{9b}31m\u{202e}dir")
                try FileManager.default.createDirectory(atPath: hostile, withIntermediateDirectories: true)
                try FileFacts.create(hostile + "/repository.json", with: Data("{\"not\": \"an identity\"}\n".utf8))
                try FileFacts.create(hostile + "/file", with: Data("untouched\n".utf8))
                try await guest.write("vda", "write -P 0x77 0 64k")
                let point = try BackupSummary.decode(try await guest.backup())
                let (evil, impostor) = ("pullback-deadbeef-20200101T000000Z", "pullback-0badcafe-20200101T000000Z")
                try await Self.createByHand(
                    guest, name: evil, description: "pullback repository deadbeef at \(hostile)")
                try await Self.createByHand(
                    guest, name: impostor, description: "pullback repository 0badcafe at \(guest.repo)")
                // As an older Pullback left them: the description names no repository.
                let older = "pullback-\(Self.tag(of: point.checkpoint))-20200101T000000Z"
                try await Self.createByHand(guest, name: older, description: "pullback")
                let before = (try PruneTests.Tree(hostile), try PruneTests.Tree(guest.repo))

                let text = try await Self.checkpoints(guest)
                try requireSuccess(text)
                let lines = text.stdout.split(separator: "\n", omittingEmptySubsequences: false)
                #expect(lines.count == 6 && lines.last == "", "one line per checkpoint and a summary: \(text)")
                #expect(!text.stdout.unicodeScalars.contains { $0 == "\u{9b}" || $0 == "\u{202e}" }, "\(text)")
                let shown = fx.path("evil\\x0aline\\x9b31m\\u{202e}dir")
                #expect(
                    text.stdout.contains("\(evil)  holds a point: unknown (repository unreadable: "), "\(text)")
                #expect(text.stdout.contains("repository deadbeef at \(shown)\n"), "\(text)")
                #expect(
                    text.stdout.contains(
                        "\(impostor)  holds a point: no (repository gone, moved or not mounted: another repository (tag \(Self.tag(of: point.checkpoint))) is there; if it moved, use --repo NEWDIR to check it)  repository 0badcafe at \(guest.repo)\n"
                    ), "\(text)")

                #expect(
                    text.stdout.contains(
                        "\(older)  holds a point: unknown (no repository path is recorded with it: made before Pullback recorded one, or not by Pullback)  repository \(Self.tag(of: point.checkpoint))\n"
                    ), "\(text)")
                // With --repo, the checkpoints of its tag are checked against it whatever their descriptions say.
                let given = try await Self.report(guest, ["--repo", guest.repo])
                #expect(given.checkpoint(older)?.holdsPoint == "no", "\(given)")
                #expect(given.checkpoint(point.checkpoint)?.holdsPoint == "yes", "\(given)")
                #expect(given.checkpoint(impostor)?.holdsPoint == "gone", "\(given)")

                // JSON gives the path back as it was, with every control character escaped.
                let json = try await Self.checkpoints(guest, ["--json"])
                #expect(!json.stdout.unicodeScalars.contains { $0 == "\u{9b}" || $0 == "\u{202e}" }, "\(json)")
                let report = try Self.decoded(Report.self, json)
                #expect(report.checkpoint(evil)?.repository == hostile, "\(report)")
                #expect(report.checkpoint(point.checkpoint)?.holdsPoint == "yes", "\(report)")

                // Without --all, --tag removes only checkpoints whose repository is gone: an unreadable one, or one
                // that records no repository (it may be a live repository's base), is refused and nothing removed.
                let unrecorded = "pullback-0123abcd-20200101T000000Z"
                try await Self.createByHand(guest, name: unrecorded, description: "pullback")
                let unreadable = try await Self.checkpoints(guest, ["--remove", "--tag", "deadbeef"])
                expectCleanFailure(
                    unreadable,
                    mentioning: [
                        "1 checkpoint of repository deadbeef records no repository path or one that cannot be read",
                        "--remove --repo DIR`", "--all", "nothing was removed",
                    ])
                let unknown = try await Self.checkpoints(guest, ["--remove", "--tag", "0123abcd"])
                expectCleanFailure(
                    unknown, mentioning: ["1 checkpoint of repository 0123abcd records no repository path"])
                let all = [evil, impostor, older, unrecorded, point.checkpoint].sorted()
                #expect(try await guest.checkpoints().sorted() == all)

                let removal = try Self.decoded(
                    Removal.self,
                    try await Self.checkpoints(guest, ["--remove", "--tag", "deadbeef", "--all", "--json"]))
                #expect(removal.removed == [evil], "\(removal)")
                let removal2 = try Self.decoded(
                    Removal.self,
                    try await Self.checkpoints(guest, ["--remove", "--tag", "0123abcd", "--all", "--json"]))
                #expect(removal2.removed == [unrecorded], "\(removal2)")
                #expect(try await guest.checkpoints().sorted() == [impostor, older, point.checkpoint].sorted())
                #expect(try PruneTests.Tree(hostile) == before.0, "the hostile folder was written to")
                #expect(try PruneTests.Tree(guest.repo) == before.1, "the repository was written to")
            }
        }
    }
}
