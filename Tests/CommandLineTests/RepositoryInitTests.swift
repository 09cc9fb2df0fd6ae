import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

extension CopyIntegration {
    /// Repositories are made only by `pullback init` (or `backup --init`): a mistyped `--repo`, a URL, or someone's
    /// folder is refused in one line and left as it was. The backups use libvirt's test driver, whose domain `test`
    /// exists (so a run gets as far as making its repository, as the old behaviour did) but has no disk to back up.
    @Suite("Explicit repositories: init, and what is not a repository refused")
    struct RepositoryInitTests {
        static let testDriver = ["--connect", "test:///default"]

        /// `pullback ARGUMENTS` run in `folder`, so that a relative `--repo` would land there.
        static func pullback(_ fx: Fixture, in folder: String, _ arguments: [String]) async throws -> CommandResult {
            try await fx.run(
                ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", folder, try Pullback.binaryPath()] + arguments)
        }

        @Test(
            "init makes the folder (and its parents) 0700 and repository.json 0600, and refuses a second time",
            .timeLimit(.minutes(1)))
        func initMakesAPrivateRepositoryOnce() async throws {
            try await Fixture.run { fx in
                let repo = fx.path("srv/backups/repo")
                let made = try await RepositoryEdits.pullback(fx, umask: "022", ["init", "--repo", repo])
                try requireSuccess(made)
                #expect(made.stdout == "created the repository \(repo)\n", "\(made)")
                #expect(try FileFacts.listing(repo) == ["repository.json"])
                for folder in [fx.path("srv"), fx.path("srv/backups"), repo] {
                    #expect(
                        FileFacts.mode(folder) == 0o700, "\(folder) is \(String(FileFacts.mode(folder) ?? 0, radix: 8))"
                    )
                }
                #expect(FileFacts.mode(repo + "/repository.json") == 0o600)
                let identity = try Data(contentsOf: URL(fileURLWithPath: repo + "/repository.json"))

                let again = try await Pullback.run(fx, ["init", "--repo", repo])
                expectCleanFailure(again, mentioning: [repo, "already"])
                #expect(again.stdout.isEmpty, "\(again)")
                #expect(try Data(contentsOf: URL(fileURLWithPath: repo + "/repository.json")) == identity)
                #expect(try FileFacts.listing(repo) == ["repository.json"])

                // An empty folder someone made under umask 022 becomes a repository, as private as a new one.
                let empty = fx.path("empty")
                try FileManager.default.createDirectory(
                    atPath: empty, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o755])
                try requireSuccess(try await Pullback.run(fx, ["init", "--repo", empty]))
                #expect(FileFacts.mode(empty) == 0o700 && FileFacts.mode(empty + "/repository.json") == 0o600)
            }
        }

        @Test(
            "A folder with files in it is never made a repository: not by init, backup or backup --init",
            .timeLimit(.minutes(1)))
        func aFolderIsNeverAdopted() async throws {
            try await Fixture.run { fx in
                let folder = fx.path("documents")
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
                try FileFacts.create(folder + "/notes.txt", with: Data("mine\n".utf8))
                for arguments in [
                    ["init", "--repo", folder],
                    ["backup", "test", "--repo", folder] + Self.testDriver,
                    ["backup", "test", "--repo", folder, "--init"] + Self.testDriver,
                ] {
                    let result = try await Pullback.run(fx, arguments)
                    expectCleanFailure(result, mentioning: [folder, "not a Pullback repository"])
                    #expect(try FileFacts.listing(folder) == ["notes.txt"], "\(arguments) changed the folder")
                }
                #expect(try Data(contentsOf: URL(fileURLWithPath: folder + "/notes.txt")) == Data("mine\n".utf8))
            }
        }

        @Test(
            "--repo with a URL scheme is refused in one line, and no folder named after the scheme is made",
            .timeLimit(.minutes(1)))
        func aURLIsRefused() async throws {
            try await Fixture.run { fx in
                let cwd = fx.path("cwd")
                try FileManager.default.createDirectory(atPath: cwd, withIntermediateDirectories: false)
                for url in ["sftp://host/x", "gs://bucket/x"] {
                    for arguments in [
                        ["backup", "test", "--repo", url] + Self.testDriver,
                        ["backup", "test", "--repo", url, "--init"] + Self.testDriver,
                        ["init", "--repo", url], ["list", "--repo", url], ["verify", "--repo", url],
                    ] {
                        let result = try await Self.pullback(fx, in: cwd, arguments)
                        expectCleanFailure(result, mentioning: [url, "URL", "local folder"])
                        #expect(result.stdout.isEmpty, "\(result)")
                        let made = try FileFacts.listing(cwd)
                        #expect(made.isEmpty, "\(arguments) made \(made)")
                    }
                }
            }
        }

        @Test(
            "backup into a path that is not a repository is refused naming pullback init, and makes nothing",
            .timeLimit(.minutes(1)))
        func aMistypedRepositoryIsRefused() async throws {
            try await Fixture.run { fx in
                let typo = fx.path("bakcups")
                let result = try await Pullback.run(fx, ["backup", "test", "--repo", typo] + Self.testDriver)
                expectCleanFailure(result, mentioning: ["not a Pullback repository", typo, "pullback init --repo"])
                #expect(!FileFacts.exists(typo), "backup made \(BackupTests.allFiles(typo))")

                // --init makes one, except for --level incremental, which a new repository refuses: nothing is left.
                let incremental = try await Pullback.run(
                    fx, ["backup", "test", "--repo", typo, "--init", "--level", "incremental"] + Self.testDriver)
                expectCleanFailure(incremental, mentioning: [typo])
                #expect(!FileFacts.exists(typo), "backup --init --level incremental left \(BackupTests.allFiles(typo))")
                let initialized = try await Pullback.run(
                    fx, ["backup", "test", "--repo", typo, "--init"] + Self.testDriver)
                // The test driver's domain has no disk: the backup fails after the repository is made.
                expectCleanFailure(initialized, mentioning: ["no disk"])
                #expect(FileFacts.mode(typo) == 0o700 && FileFacts.mode(typo + "/repository.json") == 0o600)
            }
        }

        @Test(
            "list of a domain with no backup exits 1 like restore and verify; the whole listing may be empty",
            .timeLimit(.minutes(1)))
        func listOfAnUnknownDomainFails() async throws {
            try await Fixture.run { fx in
                let repo = fx.path("repo")
                try requireSuccess(try await Pullback.run(fx, ["init", "--repo", repo]))
                for arguments in [["list", "--repo", repo, "nosuch"], ["list", "--repo", repo, "nosuch", "--json"]] {
                    let result = try await Pullback.run(fx, arguments)
                    expectCleanFailure(result, mentioning: ["no backup of nosuch"])
                    #expect(result.stdout.isEmpty, "\(result)")
                }
                let all = try await Pullback.run(fx, ["list", "--repo", repo])
                try requireSuccess(all)
                #expect(all.stdout.isEmpty && all.stderr.isEmpty, "\(all)")
            }
        }

        @Test(
            "help of an unknown command, and every argument error, is one `pullback: error:` line",
            .timeLimit(.minutes(1)))
        func argumentErrorsAreOneLine() async throws {
            try await Fixture.run { fx in
                let unknownHelp = try await Pullback.run(fx, ["help", "nosuch"])
                expectCleanFailure(unknownHelp, exitCode: 64, mentioning: ["nosuch", "init", "backup"])
                #expect(unknownHelp.stdout.isEmpty, "the main help was printed: \(unknownHelp)")
                let help = try await Pullback.run(fx, ["help", "init"])
                try requireSuccess(help)
                #expect(help.stdout.contains("pullback init --repo <repo>"), "\(help)")

                for (arguments, mentioning) in [
                    (["nosuch"], "nosuch"), (["backup"], "--repo"), (["backup", "--repo", fx.path("r")], "--all"),
                    (["list"], "--repo"),
                    (["backup", "web1", "--repo", fx.path("r"), "--bogus\u{1b}[2J"], "--bogus\\x1b[2J"),
                    (["verify", "--repo", fx.path("r"), "--at", "123"], "--at 123"),
                ] {
                    let result = try await Pullback.run(fx, arguments)
                    expectCleanFailure(result, exitCode: 64, mentioning: [mentioning])
                    #expect(!result.stderr.contains("\u{1b}"), "\(result)")
                }
            }
        }
    }
}
