import Foundation
import Testing

extension BackupIntegration {
    /// An encrypted repository refuses what it cannot trust: a missing or wrong key, a key file others may read, a
    /// sealed object changed, moved, swapped, taken from another object or cut short, a hostile `repository.json`.
    /// Each refusal is one `pullback: error:` line and exit 1, and leaves every byte of the repository (sha256 of every
    /// file, and the names in it) as it was; a restore leaves nothing in `--to`, a server never serves wrong data.
    @Suite("encrypted repositories: keys, damage, hostile repository.json (embedded libvirt)", .serialized)
    struct EncryptedRepositoryDamageTests {
        /// Where a sealed object's frames start: a 64-byte header, then 64 KiB of ciphertext and a 16-byte tag each.
        static let sealedHeaderSize: UInt64 = 64
        static let sealedFrameSize: UInt64 = 65536 + 16

        static func frameOffset(_ index: UInt64) -> UInt64 { sealedHeaderSize + index * sealedFrameSize }

        @Test(
            "missing and wrong keys, flipped, swapped, foreign and cut frames, a damaged manifest: one line each, nothing changed, nothing restored or served",
            .timeLimit(.minutes(4)))
        func keysAndDamage() async throws {
            try await LibvirtGuest.run(disks: [("vda", 16 * mib)]) { fx, guest in
                let key = try Self.rawKey(fx, "key.bin")
                let repo = fx.path("sealed")
                try requireSuccess(
                    try await Self.pullback(fx, ["init", "--repo", repo, "--encrypt", "--key-file", key]))
                try await guest.write("vda", "write -P 0x41 0 1M", "write -P 0x42 8M 64k")
                let full = try await Self.backup(guest, repo: repo, key: key)
                let fullSnapshot = try await guest.snapshot("full")
                try await guest.write("vda", "write -P 0x43 2M 256k")
                let inc = try await Self.backup(guest, repo: repo, key: key)
                #expect([full.level, inc.level] == ["full", "incremental"], "\(full), \(inc)")
                let fullImage = { (root: String) in "\(root)/\(guest.name)/\(full.point)/vda.qcow2" }
                let incImage = { (root: String) in "\(root)/\(guest.name)/\(inc.point)/vda.qcow2" }

                // The control: with its key the full point restores as the disk was, so every refusal below is the
                // damage's or the key's doing.
                let good = fx.target("good")
                try requireSuccess(
                    try await Self.pullback(
                        fx,
                        [
                            "restore", "--repo", repo, guest.name, "--at", full.point, "--to", good, "--format", "raw",
                            "--key-file", key,
                        ]))
                try await expectSameBytes(fx, good + "/vda.raw", try #require(fullSnapshot["vda"]))
                #expect(
                    try FileFacts.bytes(fullImage(repo), at: 0, count: 8) == Data("PBSEAL01".utf8),
                    "the full's image is not sealed")

                // `image-info` of a sealed image says what it is instead of reading it as qcow2.
                let info = try await Self.pullback(fx, ["image-info", fullImage(repo)])
                expectCleanFailure(info)
                #expect(
                    info.stderr.lowercased().contains("sealed") || info.stderr.lowercased().contains("encrypted"),
                    "\(info)")

                // And `serve` of it reads as the disk was: a damaged point's read failing below is the damage's.
                let served = try await Self.serveAndCompare(
                    guest, repo: repo, key: key, point: full.point, label: "control",
                    reference: try #require(fullSnapshot["vda"]))
                guard case .compared(let compare) = served, compare.succeeded else {
                    Issue.record("serve of the undamaged point: \(served)")
                    return
                }

                try await Self.expectKeysRefused(guest, repo: repo, key: key)

                let sizeOfFull = UInt64(try FileFacts.size(fullImage(repo)))
                try #require(sizeOfFull > Self.frameOffset(3), "the full's image has too few frames: \(sizeOfFull)")
                try #require(UInt64(try FileFacts.size(incImage(repo))) > Self.frameOffset(2))
                let lastFrame = (sizeOfFull - Self.sealedHeaderSize - 1) / Self.sealedFrameSize
                let damages: [(label: String, damage: (String) throws -> Void, verifyAndServe: Bool)] = [
                    ("flipped", { try Self.flipByte(fullImage($0), at: Self.frameOffset(1) + 1000) }, true),
                    ("swapped", { try Self.swapFrames(fullImage($0), 0, 1) }, false),
                    ("foreign", { try Self.copyFrame(1, from: incImage($0), to: fullImage($0)) }, true),
                    ("cut-1000", { try Self.truncate(fullImage($0), to: sizeOfFull - 1000) }, false),
                    ("cut-frame", { try Self.truncate(fullImage($0), to: Self.frameOffset(lastFrame)) }, false),
                ]
                for (label, damage, verifyAndServe) in damages {
                    let copy = fx.path("damaged-\(label)")
                    try await RepositoryEdits.copy(fx, repo, to: copy)
                    try damage(copy)
                    try await Self.expectDamageRefused(
                        guest, repo: copy, key: key, point: full.point, image: fullImage(copy), label: label,
                        verifyAndServe: verifyAndServe, reference: try #require(fullSnapshot["vda"]))
                }

                // A manifest with a byte flipped: the listing names it rather than skipping or misreading the point.
                let manifestCopy = fx.path("damaged-manifest")
                try await RepositoryEdits.copy(fx, repo, to: manifestCopy)
                let manifest = "\(manifestCopy)/\(guest.name)/\(inc.point)/manifest.json"
                try Self.flipByte(manifest, at: Self.sealedHeaderSize + 10)
                let before = try await Self.fingerprint(fx, manifestCopy)
                for arguments in [["list", "--repo", manifestCopy, guest.name], ["list", "--repo", manifestCopy]] {
                    let listed = try await Self.pullback(fx, arguments + ["--key-file", key])
                    expectCleanFailure(listed, mentioning: [manifest, "fails authentication"])
                    #expect(listed.stdout.isEmpty, "\(listed)")
                }
                #expect(try await Self.fingerprint(fx, manifestCopy) == before, "list changed the repository")
            }
        }

        /// No key, another raw key, a wrong passphrase (as the option and through `PULLBACK_KEY_FILE`): `list`,
        /// `restore` and `backup` each refuse in one line, naming what to give or the key file; nothing in the
        /// repository changes, nothing is restored, no checkpoint is made.
        static func expectKeysRefused(_ guest: LibvirtGuest, repo: String, key: String) async throws {
            let fx = guest.fx
            let before = try await fingerprint(fx, repo)
            let checkpoints = try await guest.checkpoints()
            let out = fx.target("refused-key")
            let commands: [[String]] = [
                ["list", "--repo", repo, guest.name], ["list", "--repo", repo], ["list", "--repo", repo, "--json"],
                ["restore", "--repo", repo, guest.name, "--to", out],
                ["backup", guest.name, "--repo", repo, "--connect", guest.uri],
            ]
            for command in commands {
                let result = try await pullback(fx, command)
                expectCleanFailure(result, mentioning: ["encrypted", "--key-file"])
                #expect(result.stdout.isEmpty, "\(result)")
            }
            let otherKey = try rawKey(fx, "other.bin")
            let wrongPassphrase = try keyFile(fx, "wrong.txt", Data("not the passphrase of this one\n".utf8))
            for wrong in [otherKey, wrongPassphrase] {
                for command in commands {
                    let result = try await pullback(fx, command + ["--key-file", wrong])
                    expectCleanFailure(result, mentioning: ["key", wrong])
                    #expect(result.stdout.isEmpty, "\(result)")
                }
                let fromEnvironment = try await pullback(
                    fx, ["list", "--repo", repo, guest.name], environment: ["PULLBACK_KEY_FILE=\(wrong)"])
                expectCleanFailure(fromEnvironment, mentioning: ["key", wrong])
            }
            #expect(!FileFacts.exists(out), "a refused restore made \(BackupTests.allFiles(out))")
            #expect(try await fingerprint(fx, repo) == before, "a refused command changed the repository")
            #expect(try await guest.checkpoints() == checkpoints, "a refused backup made a checkpoint")
        }

        /// `restore` of `point` of the damaged `repo` (raw, and qcow2) refuses in one line naming `image`, leaving
        /// `--to` empty; with `verifyAndServe`, `verify` refuses too, and `serve` either refuses or fails the read of
        /// `qemu-img compare` against `reference` (the disk as the point holds it), never answers with other data.
        static func expectDamageRefused(
            _ guest: LibvirtGuest, repo: String, key: String, point: String, image: String, label: String,
            verifyAndServe: Bool, reference: String, sourceLocation: SourceLocation = #_sourceLocation
        ) async throws {
            let fx = guest.fx
            let before = try await fingerprint(fx, repo)
            let out = fx.target("restored-\(label)")
            for format in ["raw", "qcow2"] {
                let result = try await pullback(
                    fx,
                    [
                        "restore", "--repo", repo, guest.name, "--at", point, "--to", out, "--format", format,
                        "--key-file", key,
                    ])
                expectCleanFailure(result, mentioning: [image], sourceLocation: sourceLocation)
                expectAuthenticationFailure(result, label: label, sourceLocation: sourceLocation)
                #expect(
                    (try? FileFacts.listing(out)) ?? [] == [], "\(label): restore left \(BackupTests.allFiles(out))",
                    sourceLocation: sourceLocation)
            }
            if verifyAndServe {
                let verified = try await pullback(
                    fx, ["verify", "--repo", repo, guest.name, "--at", point, "--key-file", key])
                expectCleanFailure(verified, mentioning: [image], sourceLocation: sourceLocation)
                #expect(
                    (verified.stdout + verified.stderr).contains("fails authentication"), "\(label): \(verified)",
                    sourceLocation: sourceLocation)
                try await expectNothingWrongServed(
                    guest, repo: repo, key: key, point: point, image: image, label: label, reference: reference,
                    sourceLocation: sourceLocation)
            }
            #expect(
                try await fingerprint(fx, repo) == before, "\(label): a refused command changed the repository",
                sourceLocation: sourceLocation)
        }

        /// The error says the object fails authentication, or, for a size no sealed object has, that it is no
        /// sealed object's.
        static func expectAuthenticationFailure(
            _ result: CommandResult, label: String, sourceLocation: SourceLocation = #_sourceLocation
        ) {
            #expect(
                result.stderr.contains("fails authentication") || result.stderr.contains("sealed object"),
                "\(label): \(result)", sourceLocation: sourceLocation)
        }

        /// `serve` of the damaged point either refuses in one line naming `image`, or serves an export whose read by
        /// `qemu-img compare` fails with a read error (exit 2 or more), never with data that differs (exit 1) or a
        /// match (exit 0).
        static func expectNothingWrongServed(
            _ guest: LibvirtGuest, repo: String, key: String, point: String, image: String, label: String,
            reference: String, sourceLocation: SourceLocation = #_sourceLocation
        ) async throws {
            let served = try await serveAndCompare(
                guest, repo: repo, key: key, point: point, label: label, reference: reference)
            switch served {
            case .refused(let refused):
                expectCleanFailure(refused, mentioning: [image], sourceLocation: sourceLocation)
            case .compared(let compare):
                #expect(
                    compare.signal == nil && compare.exitCode >= 2,
                    "\(label): the damaged point was served and read: \(compare)", sourceLocation: sourceLocation)
            }
        }

        /// What became of `serve` of a point: it refused (ended before printing its export), or `qemu-img compare`
        /// read its export beside the reference.
        enum Served {
            case refused(CommandResult)
            case compared(CommandResult)
        }

        /// Serves `point` of `repo` (disk `vda`) and compares the export with the raw file `reference`.
        static func serveAndCompare(
            _ guest: LibvirtGuest, repo: String, key: String, point: String, label: String, reference: String
        ) async throws -> Served {
            let fx = guest.fx
            let socket = fx.path("\(label).sock")
            let server = try fx.spawn(
                [
                    "env", "-u", "PULLBACK_KEY_FILE", try Pullback.binaryPath(), "serve", "--repo", repo, guest.name,
                    "--at", point, "--socket", socket, "--key-file", key,
                ], label: "serve-\(label)")
            _ = try await waitUntil(timeout: .seconds(30)) { !server.stdoutSoFar().isEmpty || !server.isRunning }
            guard server.isRunning else { return .refused(try await server.waitForExit(timeout: .seconds(10))) }
            let uri = "nbd+unix:///vda?socket=\(socket)"
            let compare = try await fx.run(["qemu-img", "compare", "-f", "raw", uri, "-F", "raw", reference])
            server.interrupt()
            _ = try await server.waitForExit(timeout: .seconds(20))
            return .compared(compare)
        }
    }
}
