import Foundation
import Testing

extension BackupIntegration.EncryptedRepositoryDamageTests {
    @Test(
        "Key files others may read, missing, a passphrase under 8 bytes, no key at all, a wrong passphrase: one line each, nothing made or changed",
        .timeLimit(.minutes(2)))
    func keyFileChecks() async throws {
        try await Fixture.run { fx in
            let repo = fx.path("never")
            let empty = fx.path("empty")
            try FileManager.default.createDirectory(
                atPath: empty, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
            let open = try Self.rawKey(fx, "open.bin", mode: 0o644)
            let groupReadable = try Self.keyFile(fx, "group.txt", Data("long enough passphrase\n".utf8), mode: 0o640)
            let missing = fx.path("no-such-key")
            let short = try Self.keyFile(fx, "short.txt", Data("seven77\n".utf8))
            // No key at all is an argument error (exit 64, as every other); the key files' faults exit 1.
            let cases: [(label: String, key: [String], environment: [String], exit: Int32, mentioning: [String])] = [
                ("0644", ["--key-file", open], [], 1, [open, "chmod 600"]),
                ("0640", ["--key-file", groupReadable], [], 1, [groupReadable, "chmod 600"]),
                ("0644 in PULLBACK_KEY_FILE", [], ["PULLBACK_KEY_FILE=\(open)"], 1, [open, "chmod 600"]),
                ("missing", ["--key-file", missing], [], 1, [missing]),
                ("missing in PULLBACK_KEY_FILE", [], ["PULLBACK_KEY_FILE=\(missing)"], 1, [missing]),
                ("no key", [], [], 64, ["--key-file", "PULLBACK_KEY_FILE"]),
                ("7-byte passphrase", ["--key-file", short], [], 1, [short, "8"]),
            ]
            for entry in cases {
                for target in [repo, empty] {
                    let result = try await Self.pullback(
                        fx, ["init", "--repo", target, "--encrypt"] + entry.key, environment: entry.environment)
                    expectCleanFailure(result, exitCode: entry.exit, mentioning: entry.mentioning)
                    #expect(result.stdout.isEmpty, "\(entry.label): \(result)")
                }
                #expect(
                    !FileFacts.exists(repo),
                    "\(entry.label): a refused init made \(CopyIntegration.BackupTests.allFiles(repo))")
                #expect(try FileFacts.listing(empty) == [], "\(entry.label): a refused init wrote into a folder")
            }

            // Eight bytes (a trailing newline dropped) are enough; the key file is checked again on every use, and a
            // wrong key is named.
            let eight = try Self.keyFile(fx, "eight.txt", Data("eight888\n".utf8))
            let made = fx.path("made")
            try requireSuccess(try await Self.pullback(fx, ["init", "--repo", made, "--encrypt", "--key-file", eight]))
            try requireSuccess(try await Self.pullback(fx, ["list", "--repo", made, "--key-file", eight]))
            let before = try await Self.fingerprint(fx, made)
            // Another passphrase is told from the right one by the recorded key check, a raw key by its form.
            let otherPassphrase = try Self.keyFile(fx, "other.txt", Data("eight889\n".utf8))
            let raw = try Self.rawKey(fx, "raw.bin")
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: eight)
            for (key, mentioning) in [
                (eight, [eight, "chmod 600"]), (missing, [missing]),
                (otherPassphrase, [otherPassphrase, "not the key"]),
                (raw, [raw, "passphrase"]),
            ] {
                for command in [["list", "--repo", made], ["verify", "--repo", made]] {
                    let result = try await Self.pullback(fx, command + ["--key-file", key])
                    expectCleanFailure(result, mentioning: mentioning)
                }
            }
            #expect(try await Self.fingerprint(fx, made) == before, "a refused command changed the repository")
        }
    }

    @Test(
        "A hostile repository.json: absurd scrypt parameters, unknown scheme or key form, a key check or salt of the wrong length: one line, no trap, bounded memory",
        .timeLimit(.minutes(2)))
    func hostileRepositoryIdentity() async throws {
        try await Fixture.run { fx in
            let key = try Self.keyFile(fx, "passphrase.txt", Data("correct horse battery staple\n".utf8))
            let repo = fx.path("sealed")
            try requireSuccess(try await Self.pullback(fx, ["init", "--repo", repo, "--encrypt", "--key-file", key]))
            let identity = try String(contentsOfFile: repo + "/repository.json", encoding: .utf8)
            // The control: the untouched repository opens under the same memory limit.
            try requireSuccess(try await Self.bounded(fx, ["list", "--repo", repo, "--key-file", key]))

            let cases: [(label: String, edit: (inout [String: Any]) -> Void)] = [
                ("N = 2^40", { Self.editScrypt(&$0) { $0["logN"] = 40 } }),
                ("N = 2^63", { Self.editScrypt(&$0) { $0["logN"] = 63 } }),
                ("N = 2^-1", { Self.editScrypt(&$0) { $0["logN"] = -1 } }),
                ("N = 2^1e300", { Self.editScrypt(&$0) { $0["logN"] = 1e300 } }),
                ("r = 10^6", { Self.editScrypt(&$0) { $0["r"] = 1_000_000 } }),
                ("p = 2^31", { Self.editScrypt(&$0) { $0["p"] = 1 << 31 } }),
                // Each within its own bound, 4 GiB together.
                ("N = 2^20, r = 32", { Self.editScrypt(&$0) { $0.merge(["logN": 20, "r": 32]) { $1 } } }),
                ("unknown scheme", { $0["scheme"] = "aes-128-ecb-v0" }),
                ("unknown key form", { $0["key"] = "argon2id" }),
                ("raw key form with scrypt parameters", { $0["key"] = "raw" }),
                ("scrypt parameters missing", { $0["scrypt"] = nil }),
                ("short key check", { $0["keyCheck"] = ($0["keyCheck"] as? String)?.prefix(10).description }),
                ("key check not hex", { $0["keyCheck"] = String(repeating: "zz", count: 32) }),
                ("short salt", { Self.editScrypt(&$0) { $0["salt"] = "00112233" } }),
            ]
            for (label, edit) in cases {
                let copy = fx.path("hostile-\(label.filter { $0.isLetter || $0.isNumber })")
                try await RepositoryEdits.copy(fx, repo, to: copy)
                try RepositoryEdits.editJSON(copy + "/repository.json") { object in
                    var encryption = object["encryption"] as? [String: Any] ?? [:]
                    edit(&encryption)
                    object["encryption"] = encryption
                }
                let edited = try String(contentsOfFile: copy + "/repository.json", encoding: .utf8)
                #expect(edited != identity, "\(label): no edit")
                let before = try await Self.fingerprint(fx, copy)
                for command in [["list", "--repo", copy], ["verify", "--repo", copy], ["list", "--repo", copy, "x"]] {
                    let result = try await Self.bounded(fx, command + ["--key-file", key])
                    expectCleanFailure(result, mentioning: ["repository.json"])
                    #expect(result.stdout.isEmpty, "\(label): \(result)\nrepository.json: \(edited)")
                }
                #expect(try await Self.fingerprint(fx, copy) == before, "\(label): the repository changed")
            }
        }
    }

    /// `pullback ARGUMENTS` with its address space limited to 4 GiB (`prlimit --as`): scrypt parameters that ask
    /// for more memory must be refused, not tried; 20 seconds are more than enough for the legitimate ones.
    static func bounded(_ fx: Fixture, _ arguments: [String]) async throws -> CommandResult {
        try await fx.run(
            ["prlimit", "--as=\(4 << 30)", "env", "-u", "PULLBACK_KEY_FILE", try Pullback.binaryPath()] + arguments,
            timeout: .seconds(20))
    }

    /// Edits the `scrypt` object of an `encryption` object.
    static func editScrypt(_ encryption: inout [String: Any], _ edit: (inout [String: Any]) -> Void) {
        var scrypt = encryption["scrypt"] as? [String: Any] ?? [:]
        edit(&scrypt)
        encryption["scrypt"] = scrypt
    }
}
