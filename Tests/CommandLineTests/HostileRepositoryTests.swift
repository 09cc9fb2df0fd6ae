import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

extension CopyIntegration {
    /// A repository is untrusted input: repositories made by a real backup (embedded driver), then edited by hand
    /// (manifests naming files outside, symbolic links, crafted job records, another tool's checkpoint, a missing
    /// repository.json, wide modes). Every refusal is one `pullback: error:` line and exit 1, nothing outside the
    /// repository or `--to` is read, changed or created, and no host file content reaches any output.
    @Suite("a hostile repository (embedded libvirt)", .serialized)
    struct HostileRepositoryTests {
        /// The manifest of point `point` in `repo`.
        static func manifest(_ repo: String, _ guest: LibvirtGuest, _ point: String) -> String {
            "\(repo)/\(guest.name)/\(point)/manifest.json"
        }

        /// `list` (of the domain and of the whole repository), `restore` and `verify` all refuse `repo`, each in one
        /// line mentioning `mentioning`, and neither `--to` nor anything beside it receives a file.
        static func expectRefusedByReaders(
            _ guest: LibvirtGuest, repo: String, label: String, mentioning: [String], secret: String,
            sourceLocation: SourceLocation = #_sourceLocation
        ) async throws {
            let fx = guest.fx
            let outParent = fx.path("out-\(label)")
            let commands: [[String]] = [
                ["list", "--repo", repo, guest.name],
                ["list", "--repo", repo, guest.name, "--json"],
                ["list", "--repo", repo],
                ["restore", "--repo", repo, guest.name, "--to", outParent + "/disks", "--format", "raw"],
                ["restore", "--repo", repo, guest.name, "--to", outParent + "/disks"],
                ["verify", "--repo", repo, guest.name],
                ["verify", "--repo", repo, guest.name, "--json"],
            ]
            for command in commands {
                let result = try await guest.pullback(command)
                expectCleanFailure(result, mentioning: mentioning, sourceLocation: sourceLocation)
                #expect(result.stdout.isEmpty, "\(label): \(result)", sourceLocation: sourceLocation)
                RepositoryEdits.expectNoLeak(result, of: secret, sourceLocation: sourceLocation)
                #expect(
                    !result.stderr.unicodeScalars.contains { $0.value == 0x1b || $0.value == 0 || $0.value == 0x07 },
                    "a raw control character in \(label)'s error: \(result)", sourceLocation: sourceLocation)
            }
            #expect(
                (try? FileFacts.listing(outParent + "/disks")) ?? [] == [], "\(label): a disk was restored",
                sourceLocation: sourceLocation)
            #expect(
                (try? FileFacts.listing(outParent))?.allSatisfy { $0 == "disks" } ?? true,
                "\(label): a file was made beside --to: \(String(describing: try? FileFacts.listing(outParent)))",
                sourceLocation: sourceLocation)
        }

        @Test(
            "Manifest names that climb out, a NUL, escapes, forged backing names and numbers: one line, nothing read outside",
            .timeLimit(.minutes(5)))
        func hostileManifests() async throws {
            try await LibvirtGuest.run { fx, guest in
                try await guest.write("vda", "write -P 0x41 0 1M")
                try await guest.write("vdb", "write -P 0x42 0 64k")
                let (full, _) = try await BackupTests.backup(guest)
                try await guest.write("vda", "write -P 0x43 2M 64k")
                let (inc, _) = try await BackupTests.backup(guest)

                // A host file three levels above a point's folder (the fixture's root, beside the repositories),
                // as a real qcow2 image whose data begins with a marker.
                let secret = "HOST-SECRET-\(UInt32.random(in: 0...UInt32.max))"
                let outsideRaw = fx.path("outside.raw")
                var content = Data(secret.utf8)
                content.append(Data(count: 1 << 20 - content.count))
                try content.write(to: URL(fileURLWithPath: outsideRaw))
                _ = try await fx.runChecked([
                    "qemu-img", "convert", "-f", "raw", "-O", "qcow2", outsideRaw, fx.path("outside.qcow2"),
                ])
                try content.write(to: URL(fileURLWithPath: fx.path("escaped.qcow2")))
                let outsideBefore = try FileFacts.contents(fx.path("outside.qcow2"))

                let cases: [(label: String, point: String, edit: (String) throws -> Void, mentioning: [String])] = [
                    (
                        "image-outside", inc.point,
                        { try RepositoryEdits.editDisk($0, 0, "image", "../../../outside.qcow2") },
                        ["manifest.json", "disks[0].image", "../../../outside.qcow2"]
                    ),
                    (
                        "image-absolute", full.point,
                        { try RepositoryEdits.editDisk($0, 0, "image", fx.path("outside.qcow2")) },
                        ["manifest.json", "disks[0].image"]
                    ),
                    (
                        "target-escaped", inc.point, { try RepositoryEdits.editDisk($0, 0, "target", "../escaped") },
                        ["manifest.json", "disks[0].target", "../escaped"]
                    ),
                    (
                        "nul", inc.point, { try RepositoryEdits.editDisk($0, 1, "target", "vdb\u{0}x") },
                        ["manifest.json", "disks[1].target", "\\u{0}"]
                    ),
                    (
                        "escape", inc.point,
                        { try RepositoryEdits.editJSON($0) { $0["checkpoint"] = "\u{1b}]0;owned\u{07}\u{1b}[2J" } },
                        ["manifest.json", "checkpoint", "\\u{1b}"]
                    ),
                    (
                        "backing", inc.point,
                        { try RepositoryEdits.editDisk($0, 0, "backingImage", "../../../outside.qcow2") },
                        ["manifest.json", "disks[0].backingImage"]
                    ),
                    (
                        "backing-of-full", full.point,
                        { try RepositoryEdits.editDisk($0, 0, "backingImage", "/etc/passwd") },
                        ["manifest.json", "disks[0].backingImage"]
                    ),
                    (
                        "bytes-overflow", inc.point,
                        {
                            try RepositoryEdits.editDisk($0, 0, "bytesCopied", UInt64.max)
                            try RepositoryEdits.editDisk($0, 1, "bytesCopied", 1)
                        }, ["manifest.json", "bytesCopied"]
                    ),
                    (
                        "size", inc.point, { try RepositoryEdits.editDisk($0, 0, "virtualSize", UInt64.max) },
                        ["manifest.json", "disks[0].virtualSize"]
                    ),
                    (
                        "digest", inc.point, { try RepositoryEdits.editDisk($0, 0, "imageDigest", "sha256:../../etc") },
                        ["manifest.json", "disks[0].imageDigest"]
                    ),
                    (
                        "domain", full.point, { try RepositoryEdits.editJSON($0) { $0["domainName"] = "other" } },
                        ["manifest.json", "domainName"]
                    ),
                ]
                for entry in cases {
                    let repo = fx.path("repo-\(entry.label)")
                    try await RepositoryEdits.copy(fx, guest.repo, to: repo)
                    try entry.edit(Self.manifest(repo, guest, entry.point))
                    try await Self.expectRefusedByReaders(
                        guest, repo: repo, label: entry.label, mentioning: entry.mentioning, secret: secret)
                }
                #expect(try FileFacts.contents(fx.path("outside.qcow2")) == outsideBefore)
                #expect(!FileFacts.exists(fx.path("out-target-escaped/escaped.qcow2")))
                #expect(!FileFacts.exists(fx.path("out-target-escaped/escaped.raw")))

                // A point folder that is a symbolic link to a folder outside is not read through.
                let linked = fx.path("repo-linked")
                try await RepositoryEdits.copy(fx, guest.repo, to: linked)
                let elsewhere = fx.path("elsewhere-point")
                try FileManager.default.moveItem(atPath: "\(linked)/\(guest.name)/\(inc.point)", toPath: elsewhere)
                try FileManager.default.createSymbolicLink(
                    atPath: "\(linked)/\(guest.name)/\(inc.point)", withDestinationPath: elsewhere)
                try await Self.expectRefusedByReaders(
                    guest, repo: linked, label: "linked", mentioning: [inc.point, "symbolic link"], secret: secret)

                // An image that is a FIFO or /dev/zero: verify refuses it at once instead of blocking or reading
                // forever.
                for (label, make) in [
                    ("fifo", { (path: String) in _ = mkfifo(path, 0o600) }),
                    (
                        "zero",
                        { (path: String) in
                            _ = try? FileManager.default.createSymbolicLink(
                                atPath: path, withDestinationPath: "/dev/zero")
                        }
                    ),
                ] as [(String, (String) -> Void)] {
                    let repo = fx.path("repo-\(label)")
                    try await RepositoryEdits.copy(fx, guest.repo, to: repo)
                    let image = "\(repo)/\(guest.name)/\(inc.point)/vda.qcow2"
                    try FileManager.default.removeItem(atPath: image)
                    make(image)
                    let result = try await guest.pullback(
                        ["verify", "--repo", repo, guest.name], timeout: .seconds(30))
                    expectCleanFailure(result, mentioning: [image])
                }

                // The untouched repository still lists, verifies and restores.
                try requireSuccess(try await guest.pullback(["verify", "--repo", guest.repo, guest.name]))
                #expect(try await guest.list().map(\.id) == [full.point, inc.point])
            }
        }

        @Test(
            "A .lock symlink, a job record naming a folder outside, a manifest naming another tool's checkpoint",
            .timeLimit(.minutes(5)))
        func writableRepositoryIsNoLever() async throws {
            try await LibvirtGuest.run { fx, guest in
                try await guest.write("vda", "write -P 0x51 0 64k")
                let (full, _) = try await BackupTests.backup(guest)
                try await guest.write("vda", "write -P 0x52 1M 64k")
                _ = try await BackupTests.backup(guest)
                let domainFolder = "\(guest.repo)/\(guest.name)"

                // The lock is never opened through a symbolic link: the file it names keeps its content.
                let secret = "HOST-SECRET-\(UInt32.random(in: 0...UInt32.max))"
                let victim = fx.path("victim.txt")
                try Data(secret.utf8).write(to: URL(fileURLWithPath: victim))
                try FileManager.default.removeItem(atPath: domainFolder + "/.lock")
                try FileManager.default.createSymbolicLink(atPath: domainFolder + "/.lock", withDestinationPath: victim)
                let locked = try await guest.backup()
                expectCleanFailure(locked, mentioning: [".lock"])
                RepositoryEdits.expectNoLeak(locked, of: secret)
                #expect(try FileFacts.contents(victim) == Data(secret.utf8), "the lock's target was written")
                try FileManager.default.removeItem(atPath: domainFolder + "/.lock")

                // Job records naming folders pullback did not make: one named like a run folder but outside /tmp,
                // one a symbolic link in /tmp named like one.
                let outsideFolder = fx.path("pullback-abcdef")
                try FileManager.default.createDirectory(atPath: outsideFolder, withIntermediateDirectories: false)
                try Data(secret.utf8).write(to: URL(fileURLWithPath: outsideFolder + "/keep.txt"))
                let letters = Array("abcdefghijklmnopqrstuvwxyz0123456789")
                let tmpLink = "/tmp/pullback-" + String((0..<6).map { _ in letters.randomElement()! })
                let linkedFolder = fx.path("linked-victim")
                try FileManager.default.createDirectory(atPath: linkedFolder, withIntermediateDirectories: false)
                try Data(secret.utf8).write(to: URL(fileURLWithPath: linkedFolder + "/keep.txt"))
                try FileManager.default.createSymbolicLink(atPath: tmpLink, withDestinationPath: linkedFolder)
                defer { try? FileManager.default.removeItem(atPath: tmpLink) }
                for (id, socket) in [("20200101T000000Z", outsideFolder), ("20200101T000001Z", tmpLink)] {
                    let record: [String: Any] = [
                        "exportSocket": socket + "/nbd.sock", "checkpoint": "pullback-00000000-\(id)",
                        "startedDomain": false,
                    ]
                    try JSONSerialization.data(withJSONObject: record).write(
                        to: URL(fileURLWithPath: "\(domainFolder)/.job-\(id).json"))
                }

                // Another tool's checkpoint, named by an (old, edited) manifest: pruning leaves it alone.
                _ = try await guest.virshChecked(["checkpoint-create-as", guest.name, "othertool-keep"])
                try RepositoryEdits.editJSON(Self.manifest(guest.repo, guest, full.point)) {
                    $0["checkpoint"] = "othertool-keep"
                }

                // A `.partial` name that is a symbolic link to a folder outside: the next run removes the link only.
                let partialVictim = fx.path("partial-victim")
                try FileManager.default.createDirectory(atPath: partialVictim, withIntermediateDirectories: false)
                try Data(secret.utf8).write(to: URL(fileURLWithPath: partialVictim + "/keep.txt"))
                try FileManager.default.createSymbolicLink(
                    atPath: domainFolder + "/20200101T000002Z.partial", withDestinationPath: partialVictim)

                let (next, result) = try await BackupTests.backup(guest)
                RepositoryEdits.expectNoLeak(result, of: secret)
                #expect(next.level == "incremental", "\(next)")
                #expect(try FileFacts.contents(outsideFolder + "/keep.txt") == Data(secret.utf8))
                #expect(try FileFacts.contents(linkedFolder + "/keep.txt") == Data(secret.utf8))
                #expect(try FileFacts.contents(partialVictim + "/keep.txt") == Data(secret.utf8))
                #expect(!FileFacts.exists(domainFolder + "/20200101T000002Z.partial"), "the .partial link was left")
                #expect(FileFacts.exists(tmpLink), "the /tmp link named by a record was removed")
                let checkpoints = try await guest.checkpoints()
                #expect(checkpoints.contains("othertool-keep"), "another tool's checkpoint was pruned: \(checkpoints)")
                #expect(
                    try FileFacts.listing(domainFolder).filter { $0.hasPrefix(".job-") } == [],
                    "the records were not forgotten")
            }
        }

        @Test(
            "A folder without repository.json is not a repository; backup never makes one, backup --init does",
            .timeLimit(.minutes(4)))
        func notARepository() async throws {
            try await LibvirtGuest.run { fx, guest in
                try await guest.write("vda", "write -P 0x61 0 64k")
                _ = try await BackupTests.backup(guest)

                let copied = fx.path("no-identity")
                try await RepositoryEdits.copy(fx, guest.repo, to: copied)
                try FileManager.default.removeItem(atPath: copied + "/repository.json")
                let missing = fx.path("nonexistent")
                for (repo, why) in [
                    (copied, "(it has no repository.json); check --repo"),
                    (missing, "(nothing is there); check --repo, or create it with `pullback init --repo \(missing)`"),
                ] {
                    for command in [
                        ["list", "--repo", repo, guest.name], ["list", "--repo", repo, guest.name, "--json"],
                        ["list", "--repo", repo], ["list", "--repo", repo, "--json"],
                        ["restore", "--repo", repo, guest.name, "--to", fx.path("out-not-a-repo")],
                        ["verify", "--repo", repo, guest.name], ["verify", "--repo", repo, guest.name, "--json"],
                    ] {
                        let result = try await guest.pullback(command)
                        expectCleanFailure(
                            result,
                            mentioning: [
                                "not a Pullback repository: \(repo) \(why)"
                            ])
                        #expect(result.stdout.isEmpty, "\(result)")
                    }
                }
                #expect(!FileFacts.exists(missing), "a reader made the repository")
                #expect(!FileFacts.exists(fx.path("out-not-a-repo")))

                // backup of a domain libvirt does not have: no folder in the repository, no repository at all.
                let before = BackupTests.allFiles(guest.repo)
                let unknown = try await guest.pullback([
                    "backup", "nosuchdomain", "--repo", guest.repo, "--connect", guest.uri,
                ])
                expectCleanFailure(unknown, mentioning: ["nosuchdomain"])
                #expect(!FileFacts.exists(guest.repo + "/nosuchdomain"), "backup left a folder for an unknown domain")
                #expect(BackupTests.allFiles(guest.repo) == before)
                // A path that is not a repository is never made one by backup, whatever the domain: no repository,
                // no point, no checkpoint on the domain.
                let fresh = fx.path("fresh-repo")
                let checkpoints = try await guest.checkpoints()
                for domain in ["nosuchdomain", guest.name] {
                    let none = try await guest.pullback(["backup", domain, "--repo", fresh, "--connect", guest.uri])
                    expectCleanFailure(none, mentioning: ["not a Pullback repository: \(fresh)", "pullback init"])
                    #expect(!FileFacts.exists(fresh), "backup of \(domain) made a repository")
                }
                #expect(try await guest.checkpoints() == checkpoints, "a refused backup left a checkpoint")

                // A name that cannot be a repository folder is refused before anything is made.
                let climbing = try await guest.pullback([
                    "backup", "../escaped", "--repo", fresh, "--connect", guest.uri,
                ])
                expectCleanFailure(climbing, mentioning: ["../escaped"])
                #expect(!FileFacts.exists(fresh) && !FileFacts.exists(fx.path("escaped")))

                // What a one-line script runs: --init makes the repository, private, and the backup goes into it.
                let scripted = try await guest.pullback([
                    "backup", guest.name, "--repo", fresh, "--init", "--connect", guest.uri, "--json",
                ])
                try requireSuccess(scripted)
                #expect(FileFacts.mode(fresh + "/repository.json") == 0o600)
                #expect(try await guest.list(repo: fresh).count == 1)
            }
        }

        @Test(
            "Under umask 022 files are 0600 and folders 0700; an older 0755/0644 repository, its root and repository.json too, is tightened, with a note",
            .timeLimit(.minutes(4)))
        func privateModes() async throws {
            try await LibvirtGuest.run { fx, guest in
                try await guest.write("vda", "write -P 0x71 0 64k")
                // A repository of its own, made under umask 022 as an admin's shell would.
                let repo = fx.path("private-repo")
                try requireSuccess(try await RepositoryEdits.pullback(fx, umask: "022", ["init", "--repo", repo]))
                let backupArguments = ["backup", guest.name, "--repo", repo, "--connect", guest.uri, "--json"]
                let first = try await RepositoryEdits.pullback(fx, umask: "022", backupArguments)
                try requireSuccess(first)
                #expect(!first.stderr.contains("tightened"), "\(first)")

                func expectPrivate(_ label: String, sourceLocation: SourceLocation = #_sourceLocation) {
                    let entries = RepositoryEdits.modes(under: repo)
                    #expect(entries.count >= 8, "\(label): \(entries)", sourceLocation: sourceLocation)
                    for entry in entries {
                        switch entry.type {
                        case "f":
                            #expect(
                                entry.mode == 0o600, "\(label): \(entry.path) is \(String(entry.mode, radix: 8))",
                                sourceLocation: sourceLocation)
                        case "d":
                            #expect(
                                entry.mode == 0o700, "\(label): \(entry.path) is \(String(entry.mode, radix: 8))",
                                sourceLocation: sourceLocation)
                        default:
                            Issue.record(
                                "\(label): \(entry.path) is of type \(entry.type)", sourceLocation: sourceLocation)
                        }
                    }
                }
                expectPrivate("new repository")
                #expect(FileFacts.mode(repo) == 0o700, "the repository root")

                // As an older build left it: the whole repository, its root and repository.json too, 0755 and 0644.
                let domainFolder = "\(repo)/\(guest.name)"
                _ = try await fx.runChecked(["find", repo, "-type", "d", "-exec", "chmod", "0755", "{}", "+"])
                _ = try await fx.runChecked(["find", repo, "-type", "f", "-exec", "chmod", "0644", "{}", "+"])
                // Everything under the root, and the root.
                let widened = RepositoryEdits.modes(under: repo).count + 1
                try await guest.write("vda", "write -P 0x72 1M 64k")
                let second = try await RepositoryEdits.pullback(fx, umask: "022", backupArguments)
                try requireSuccess(second)
                #expect(
                    second.stderr.contains(
                        "tightened permissions of \(widened) files in \(domainFolder) to 0600/0700"),
                    "\(second)")
                #expect(
                    second.stderr.components(separatedBy: "tightened permissions").count == 2, "one note: \(second)")
                expectPrivate("tightened repository")
                #expect(FileFacts.mode(repo) == 0o700, "the repository root after tightening")
                let third = try await RepositoryEdits.pullback(fx, umask: "022", backupArguments)
                try requireSuccess(third)
                #expect(!third.stderr.contains("tightened"), "\(third)")
                expectPrivate("after a third backup")
            }
        }
    }
}
