import Foundation
import Testing

extension BackupIntegration {
    /// Encrypted repositories (`init --encrypt`), the paths that must work: points of a TCG guest sealed under a raw
    /// key or a passphrase restore, verify, serve and prune as plain ones do, while no byte the guest wrote is found in
    /// the clear in any file or object of the repository; sync seals and unseals between keys and plain repositories.
    @Suite("encrypted repositories: backup, restore, serve, prune, sync", .serialized)
    struct EncryptedBackupTests {
        /// Runs pullback with the given arguments and the key of the repository under test, however it is given.
        typealias Keyed = ([String]) async throws -> CommandResult

        /// The magic every sealed object starts with.
        static let sealedMagic = Data("PBSEAL01".utf8)

        /// A raw key file at the fixture root: 32 random bytes, the first one 0 so that they are never all printable
        /// text (which would make them a passphrase), mode 0600.
        static func rawKeyFile(_ fx: Fixture, _ name: String) throws -> String {
            var key = (0..<32).map { _ in UInt8.random(in: 0...255) }
            key[0] = 0
            return try privateFile(fx.path(name), Data(key))
        }

        /// A passphrase key file at the fixture root, with the trailing newline an editor leaves, mode 0600.
        static func passphraseFile(_ fx: Fixture, _ name: String, _ passphrase: String) throws -> String {
            try privateFile(fx.path(name), Data((passphrase + "\n").utf8))
        }

        private static func privateFile(_ path: String, _ data: Data) throws -> String {
            try FileFacts.create(path, with: data)
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
            return path
        }

        /// A string no repository holds by chance: what the tests look for in the clear.
        static func marker() -> String {
            "PULLBACK-MARKER-" + String(UInt64.random(in: 1 << 60...UInt64.max), radix: 16)
        }

        /// A 64 KiB file repeating `marker`, for the guest to write with `qemu-io write -s FILE OFFSET 64k`.
        static func markerFile(_ fx: Fixture, _ marker: String) throws -> String {
            let path = fx.path("marker")
            let repeated = String(repeating: marker, count: 64 * kib / marker.utf8.count + 1)
            try FileFacts.create(path, with: Data(repeated.utf8.prefix(64 * kib)))
            return path
        }

        /// A successful `backup --json` of the guest into `repo` through `pullback`, decoded.
        static func backup(
            _ guest: LibvirtGuest, _ pullback: Keyed, repo: String, _ extra: [String] = [],
            sourceLocation: SourceLocation = #_sourceLocation
        ) async throws -> BackupSummary {
            let result = try await pullback(
                ["backup", guest.name, "--repo", repo, "--connect", guest.uri, "--json"] + extra)
            try requireSuccess(result, sourceLocation: sourceLocation)
            return try BackupSummary.decode(result)
        }

        /// The rows of `list --repo REPO --json`, as JSON objects.
        static func listed(_ pullback: Keyed, repo: String, sourceLocation: SourceLocation = #_sourceLocation)
            async throws -> [[String: Any]]
        {
            let result = try await pullback(["list", "--repo", repo, "--json"])
            try requireSuccess(result, sourceLocation: sourceLocation)
            let rows = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]]
            return try #require(
                rows, "list --json is not an array of objects: \(result)", sourceLocation: sourceLocation)
        }

        /// `repo` lists exactly the points of `snapshots` (oldest first, as `order` gives them); each verifies and
        /// restores (raw) byte for byte to its snapshot.
        static func expectEveryPointRestores(
            _ guest: LibvirtGuest, _ pullback: Keyed, repo: String, order: [String],
            snapshots: [String: [String: String]], label: String, sourceLocation: SourceLocation = #_sourceLocation
        ) async throws {
            let ids = try await listed(pullback, repo: repo, sourceLocation: sourceLocation).compactMap {
                $0["id"] as? String
            }
            #expect(ids == order, "\(label): listed \(ids)", sourceLocation: sourceLocation)
            for id in ids {
                let snapshot = try #require(snapshots[id], "\(label): no snapshot of \(id)")
                // verify --at checks the point and the images of its chain it reads through.
                let verify = try await pullback(["verify", "--repo", repo, guest.name, "--at", id])
                let checked = Set(verify.stdout.split(separator: "\n").map(String.init))
                #expect(
                    verify.succeeded && checked.allSatisfy { $0.hasSuffix("  ok") }
                        && checked.isSuperset(of: snapshot.keys.map { "\(id)  \($0)  ok" }),
                    "\(label): verify \(id): \(verify)", sourceLocation: sourceLocation)
                let folder = guest.fx.target("\(label)-\(id)")
                let restore = try await pullback([
                    "restore", "--repo", repo, guest.name, "--at", id, "--to", folder, "--format", "raw",
                ])
                try requireSuccess(restore, sourceLocation: sourceLocation)
                #expect(
                    try FileFacts.listing(folder) == snapshot.keys.sorted().map { "\($0).raw" },
                    "\(label): restored files of \(id)", sourceLocation: sourceLocation)
                for (target, reference) in snapshot {
                    try await expectSameBytes(
                        guest.fx, "\(folder)/\(target).raw", reference, sourceLocation: sourceLocation)
                }
                try? FileManager.default.removeItem(atPath: folder)
            }
        }

        /// Whether `name`, a file of a repository (relative path or object key), stays in the clear:
        /// `repository.json` at the top and the `.lock` files.
        static func staysClear(_ name: String, top: String = "") -> Bool {
            name == top + "repository.json" || (name as NSString).lastPathComponent == ".lock"
        }

        /// Every file of the folder repository `repo` but `repository.json` and the `.lock` files starts with the
        /// sealed magic; among them the images, block lists, manifests and XML of every point.
        static func expectSealedFiles(_ repo: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            var sealed: Set<String> = []
            for case let relative as String in FileManager.default.enumerator(atPath: repo)?.allObjects ?? [] {
                let path = repo + "/" + relative
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
                    !staysClear(relative)
                else { continue }
                let head = try FileFacts.bytes(path, at: 0, count: sealedMagic.count)
                #expect(head == sealedMagic, "\(relative) is not sealed", sourceLocation: sourceLocation)
                sealed.insert((relative as NSString).lastPathComponent)
            }
            let expected: Set = [
                "manifest.json", "domain.xml", "checkpoint.xml", "vda.qcow2", "vda.blocks", "vdb.qcow2", "vdb.blocks",
            ]
            #expect(expected.isSubset(of: sealed), "sealed files seen: \(sealed)", sourceLocation: sourceLocation)
        }

        /// The files under `repo` holding `marker` (`grep -r -a -l`), relative to it.
        static func filesHolding(_ marker: String, in repo: String, using fx: Fixture) async throws -> [String] {
            let grep = try await fx.run(["grep", "-r", "-a", "-l", "-F", marker, repo])
            // grep exits 1 when nothing matched, 2 when it could not read.
            guard grep.exitCode == 0 || grep.exitCode == 1 else { throw HarnessError("grep failed: \(grep)") }
            return grep.stdout.split(separator: "\n").map { String($0.dropFirst(repo.count + 1)) }.sorted()
        }

        /// `pullback serve` of point `id` of `repo`; every disk read over NBD compares identical with `snapshot`.
        static func expectServes(
            _ guest: LibvirtGuest, _ arguments: [String], id: String, repo: String, snapshot: [String: String],
            sourceLocation: SourceLocation = #_sourceLocation
        ) async throws {
            let fx = guest.fx
            let socket = fx.path("serve-\(id).sock")
            let (server, _) = try await CopyIntegration.ServeTests.start(
                fx, ["--repo", repo, guest.name, "--at", id, "--socket", socket] + arguments,
                exports: snapshot.count)
            for (target, reference) in snapshot {
                let uri = "nbd+unix:///\(target)?socket=\(socket)"
                let compare = try await fx.run(["qemu-img", "compare", "-f", "raw", uri, "-F", "raw", reference])
                #expect(compare.succeeded, "served \(id) \(target): \(compare)", sourceLocation: sourceLocation)
            }
            server.interrupt()
            let ended = try await server.waitForExit(timeout: .seconds(20))
            #expect(ended.succeeded, "serve: \(ended)", sourceLocation: sourceLocation)
        }

        @Test(
            "init --encrypt with a raw key: a full and two incrementals (one zstd) restore identical, verify and serve; no file holds the guest's bytes in the clear (a plain repository of the same guest does) and every one but repository.json and the locks is sealed; list says encrypted; prune's synthetic full keeps it so",
            .timeLimit(.minutes(4)))
        func sealedFolderChain() async throws {
            try await LibvirtGuest.run { fx, guest in
                let key = try Self.rawKeyFile(fx, "raw.key")
                let keyed: Keyed = { try await guest.pullback($0 + ["--key-file", key]) }
                let repo = fx.path("sealed")
                try requireSuccess(try await keyed(["init", "--repo", repo, "--encrypt"]))
                let marker = Self.marker()
                let markers = try Self.markerFile(fx, marker)

                try await guest.write("vda", "write -s \(markers) 1M 64k", "write -P 0x5a 4M 1M")
                try await guest.write("vdb", "write -s \(markers) 0 64k")
                let full = try await Self.backup(guest, keyed, repo: repo)
                var snapshots = [full.point: try await guest.snapshot("full")]
                try await guest.write("vda", "write -s \(markers) 8M 64k", "write -z 4M 64k")
                let inc1 = try await Self.backup(guest, keyed, repo: repo)
                snapshots[inc1.point] = try await guest.snapshot("inc1")
                try await guest.write("vda", "write -s \(markers) 12M 64k")
                try await guest.write("vdb", "write -s \(markers) 4M 64k", "write -P 0x6b 5M 64k")
                let inc2 = try await Self.backup(guest, keyed, repo: repo, ["--compress", "zstd"])
                snapshots[inc2.point] = try await guest.snapshot("inc2")
                let order = [full.point, inc1.point, inc2.point]
                #expect([full.level, inc1.level, inc2.level] == ["full", "incremental", "incremental"])

                try await Self.expectEveryPointRestores(
                    guest, keyed, repo: repo, order: order, snapshots: snapshots, label: "sealed")
                try await Self.expectServes(
                    guest, ["--key-file", key], id: inc1.point, repo: repo, snapshot: snapshots[inc1.point] ?? [:])
                #expect(try await Self.filesHolding(marker, in: repo, using: fx) == [])
                try Self.expectSealedFiles(repo)

                // list: every row says encrypted, in text and in JSON.
                let rows = try await Self.listed(keyed, repo: repo)
                #expect(rows.map { $0["encrypted"] as? Bool } == [true, true, true], "\(rows)")
                let text = try await keyed(["list", "--repo", repo])
                try requireSuccess(text)
                let lines = text.stdout.split(separator: "\n")
                #expect(lines.count == 3 && lines.allSatisfy { $0.hasSuffix("  encrypted") }, "\(text.stdout)")
                let info = try await guest.pullback(["image-info", "\(repo)/\(guest.name)/\(full.point)/vda.qcow2"])
                #expect(info.exitCode == 1 && info.stderrLines.count == 1, "\(info)")
                #expect(info.stderr.contains("sealed") || info.stderr.contains("encrypted"), "\(info)")

                // prune --keep 1: the newest point becomes a synthetic full, still sealed, and restores identical.
                let pruned = try PruneTests.summary(
                    try await PruneTests.prune(guest, ["--keep", "1", "--json", "--key-file", key], repo: repo))
                #expect(pruned.kept == [inc2.point] && pruned.merged == [inc2.point], "\(pruned)")
                try await Self.expectEveryPointRestores(
                    guest, keyed, repo: repo, order: [inc2.point], snapshots: snapshots, label: "pruned")
                #expect(try await Self.filesHolding(marker, in: repo, using: fx) == [])
                try Self.expectSealedFiles(repo)

                // The control: a plain repository of the same guest holds the marker where grep finds it, and its
                // list says nothing of encryption.
                let (plain, _) = try await BackupTests.backup(guest)
                let clear = try await Self.filesHolding(marker, in: guest.repo, using: fx)
                let folder = "\(guest.name)/\(plain.point)"
                #expect(clear.contains("\(folder)/vda.qcow2") && clear.contains("\(folder)/vdb.qcow2"), "\(clear)")
                let plainRows = try await Self.listed({ try await guest.pullback($0) }, repo: guest.repo)
                #expect(plainRows.count == 1 && plainRows.allSatisfy { $0["encrypted"] == nil }, "\(plainRows)")
            }
        }

        @Test(
            "A passphrase through PULLBACK_KEY_FILE: backups restore identical and repository.json holds scrypt's parameters, not the passphrase; sync unseals into a plain repository qemu-img checks, seals into another key's, and reseals; the first key opens none of them",
            .timeLimit(.minutes(4)))
        func passphraseAndSync() async throws {
            try await LibvirtGuest.run { fx, guest in
                let passphrase = "correct horse battery staple " + Self.marker()
                let phrase = try Self.passphraseFile(fx, "phrase.key", passphrase)
                let binary = try Pullback.binaryPath()
                let fromEnvironment: Keyed = {
                    try await fx.run(["env", "PULLBACK_KEY_FILE=\(phrase)", binary] + $0)
                }
                let sealed = fx.path("sealed")
                try requireSuccess(try await fromEnvironment(["init", "--repo", sealed, "--encrypt"]))
                let marker = Self.marker()
                let markers = try Self.markerFile(fx, marker)

                try await guest.write("vda", "write -s \(markers) 0 64k", "write -P 0x31 2M 1M")
                try await guest.write("vdb", "write -P 0x32 1M 64k")
                let full = try await Self.backup(guest, fromEnvironment, repo: sealed)
                var snapshots = [full.point: try await guest.snapshot("full")]
                try await guest.write("vdb", "write -s \(markers) 8M 64k")
                let inc = try await Self.backup(guest, fromEnvironment, repo: sealed)
                snapshots[inc.point] = try await guest.snapshot("inc")
                let order = [full.point, inc.point]
                try await Self.expectEveryPointRestores(
                    guest, fromEnvironment, repo: sealed, order: order, snapshots: snapshots, label: "phrase")
                try Self.expectSealedFiles(sealed)
                #expect(try await Self.filesHolding(marker, in: sealed, using: fx) == [])

                // repository.json: schema 2, scrypt's salt and cost, a key check; the passphrase nowhere.
                let description = try FileFacts.contents(sealed + "/repository.json")
                let object = try JSONSerialization.jsonObject(with: description) as? [String: Any]
                let encryption = try #require(object?["encryption"] as? [String: Any], "\(object ?? [:])")
                let scrypt = encryption["scrypt"] as? [String: Any] ?? [:]
                #expect(object?["schema"] as? Int == 2 && encryption["key"] as? String == "scrypt", "\(encryption)")
                #expect((scrypt["salt"] as? String)?.count == 64, "\(encryption)")
                #expect(["logN", "r", "p"].allSatisfy { (scrypt[$0] as? Int ?? 0) > 0 }, "\(encryption)")
                #expect((encryption["keyCheck"] as? String)?.isEmpty == false, "\(encryption)")
                #expect(description.range(of: Data(passphrase.utf8)) == nil, "repository.json holds the passphrase")
                #expect(try await Self.filesHolding(passphrase, in: sealed, using: fx) == [])

                // Sealed -> plain, the key from the environment: images qemu reads, restoring identical.
                let plain = fx.path("plain")
                let unsealed = try await fromEnvironment(["sync", "--from", sealed, "--to", plain, "--init", "--json"])
                try requireSuccess(unsealed)
                #expect(try CopyIntegration.SyncTests.domain(unsealed).copied == order, "\(unsealed)")
                for id in order {
                    for disk in guest.disks {
                        let image = "\(plain)/\(guest.name)/\(id)/\(disk.target).qcow2"
                        #expect(
                            try FileFacts.bytes(image, at: 0, count: 4) == Data([0x51, 0x46, 0x49, 0xfb]), "\(image)")
                        try await Qemu.expectCheckClean(fx, image)
                    }
                }
                try await Self.expectEveryPointRestores(
                    guest, { try await guest.pullback($0) }, repo: plain, order: order, snapshots: snapshots,
                    label: "plain")
                #expect(try await Self.filesHolding(marker, in: plain, using: fx) != [], "the plain copy is sealed")

                // Plain -> sealed under another key (--to-key-file), and sealed -> sealed from one key to the other.
                let other = try Self.rawKeyFile(fx, "other.key")
                let otherKeyed: Keyed = { try await guest.pullback($0 + ["--key-file", other]) }
                // sync --init --to-key-file makes the new target encrypted under that key.
                for (label, from, keys) in [
                    ("resealed", plain, ["--to-key-file", other]),
                    ("rekeyed", sealed, ["--key-file", phrase, "--to-key-file", other]),
                    ("made-sealed", sealed, ["--key-file", phrase, "--to-key-file", other, "--init"]),
                ] {
                    let target = fx.path(label)
                    if !keys.contains("--init") {
                        try requireSuccess(try await otherKeyed(["init", "--repo", target, "--encrypt"]))
                    }
                    let synced = try await guest.pullback(["sync", "--from", from, "--to", target, "--json"] + keys)
                    try requireSuccess(synced)
                    #expect(try CopyIntegration.SyncTests.domain(synced).copied == order, "\(synced)")
                    try await Self.expectEveryPointRestores(
                        guest, otherKeyed, repo: target, order: order, snapshots: snapshots, label: label)
                    try Self.expectSealedFiles(target)
                    #expect(try await Self.filesHolding(marker, in: target, using: fx) == [])
                    let wrongKey = try await guest.pullback([
                        "restore", "--repo", target, guest.name, "--to", fx.target("\(label)-wrong"), "--key-file",
                        phrase,
                    ])
                    expectCleanFailure(wrongKey, mentioning: ["key", phrase])
                    #expect(!FileFacts.exists(fx.target("\(label)-wrong")), "a refused restore wrote its target")
                }
                // --to-key-file names a key for a plain target: refused before a point is copied in the clear.
                let intoPlain = try await guest.pullback([
                    "sync", "--from", sealed, "--to", fx.path("resealed-plain"), "--init", "--key-file", phrase,
                ])
                try requireSuccess(intoPlain)
                let before = try await fx.run(["find", fx.path("resealed-plain"), "-type", "f"]).stdout
                try await guest.write("vda", "write -P 0x41 4M 64k")
                _ = try await Self.backup(guest, fromEnvironment, repo: sealed)
                let refused = try await guest.pullback([
                    "sync", "--from", sealed, "--to", fx.path("resealed-plain"), "--key-file", phrase,
                    "--to-key-file", other,
                ])
                expectCleanFailure(refused, mentioning: ["plain repository", "--to-key-file"])
                #expect(try await fx.run(["find", fx.path("resealed-plain"), "-type", "f"]).stdout == before)

                // backup --init --encrypt: a new repository is made encrypted; a plain one already there is refused.
                let madeByBackup = fx.path("made-by-backup")
                _ = try await Self.backup(
                    guest, otherKeyed, repo: madeByBackup, ["--init", "--encrypt", "--level", "full"])
                try Self.expectSealedFiles(madeByBackup)
                let intoPlainBackup = try await otherKeyed([
                    "backup", guest.name, "--repo", fx.path("resealed-plain"), "--init", "--encrypt", "--connect",
                    guest.uri,
                ])
                expectCleanFailure(intoPlainBackup, mentioning: ["plain repository", "--encrypt"])
                #expect(try await fx.run(["find", fx.path("resealed-plain"), "-type", "f"]).stdout == before)
            }
        }

        @Test(
            "init --encrypt in a bucket: a full and an incremental restore identical and verify; every object but repository.json and the lock is sealed and none holds the guest's bytes",
            .timeLimit(.minutes(3)))
        func sealedBucket() async throws {
            try await LibvirtGuest.run { fx, guest in
                let bucket = try await TestBucket.make(fx)
                defer { bucket.server.stop() }
                let key = try Self.rawKeyFile(fx, "bucket.key")
                let keyed: Keyed = { try await bucket.pullback(fx, $0 + ["--key-file", key]) }
                let prefix = "sealed/"
                let repo = "s3://\(bucket.name)/sealed"
                try requireSuccess(try await keyed(["init", "--repo", repo, "--encrypt"]))
                let marker = Self.marker()
                let markers = try Self.markerFile(fx, marker)

                try await guest.write("vda", "write -s \(markers) 1M 64k", "write -P 0x41 3M 1M")
                try await guest.write("vdb", "write -s \(markers) 2M 64k")
                let full = try await Self.backup(guest, keyed, repo: repo)
                var snapshots = [full.point: try await guest.snapshot("full")]
                try await guest.write("vda", "write -s \(markers) 6M 64k")
                let inc = try await Self.backup(guest, keyed, repo: repo)
                snapshots[inc.point] = try await guest.snapshot("inc")
                try await Self.expectEveryPointRestores(
                    guest, keyed, repo: repo, order: [full.point, inc.point], snapshots: snapshots, label: "bucket")

                // The search finds the marker in the guest's bytes (the control), and in no object of the bucket.
                let needle = Data(marker.utf8)
                let reference = try FileFacts.contents(try #require(snapshots[inc.point]?["vda"]))
                #expect(reference.range(of: needle) != nil, "the search does not find the marker where it is")
                let keys = try await bucket.keys(under: prefix)
                for name in ["manifest.json", "vda.qcow2", "vdb.blocks"] {
                    #expect(keys["\(prefix)\(guest.name)/\(inc.point)/\(name)"] != nil, "\(keys.keys.sorted())")
                }
                for objectKey in keys.keys.sorted() {
                    let bytes = Data(try await bucket.object(objectKey))
                    #expect(bytes.range(of: needle) == nil, "\(objectKey) holds the guest's bytes in the clear")
                    if !Self.staysClear(objectKey, top: prefix) {
                        #expect(bytes.prefix(Self.sealedMagic.count) == Self.sealedMagic, "\(objectKey) is not sealed")
                    }
                }
                await bucket.close()
            }
        }
    }
}
