import Foundation
import TestSupport
import Testing

/// `--retries N` on the commands that take a repository but read no NBD export: how often a bucket's failed request
/// is tried again. No VM: the points come from the fixture repository an earlier build wrote, synced into a bucket of
/// a SeaweedFS server on free ports.
@Suite("--retries for a bucket's requests on every repository command (SeaweedFS)")
struct BucketRetryOptionTests {
    static let domain = CopyIntegration.OlderRepositoryTests.domain

    @Test(
        "store stopped: list --retries 0 fails after one attempt, --retries 2 after three, the default after six; restore --retries 12 rides out a store stopped and started again, the disks identical",
        .timeLimit(.minutes(3)))
    func storeStopped() async throws {
        try await Fixture.run { fx in
            let bucket = try await TestBucket.make(fx)
            defer { bucket.server.stop() }
            let repo = "s3://\(bucket.name)/hosts/one"
            let folder = try await CopyIntegration.OlderRepositoryTests.copyOfFixture(fx)
            try requireSuccess(try await bucket.pullback(fx, ["sync", "--from", folder, "--to", repo, "--init"]))
            let reference = fx.target("reference")
            try requireSuccess(
                try await Pullback.run(
                    fx, ["restore", "--repo", folder, Self.domain, "--to", reference, "--format", "raw"]))

            bucket.server.stop()
            let endpoint = "127.0.0.1:\(bucket.server.port)"
            let list = ["list", "--repo", repo]
            let once = try await bucket.pullback(fx, list + ["--retries", "0"])
            expectCleanFailure(once, mentioning: [endpoint])
            #expect(!once.stderr.contains("attempts"), "a retry with --retries 0: \(once)")
            let thrice = try await bucket.pullback(fx, list + ["--retries", "2"])
            expectCleanFailure(thrice, mentioning: [endpoint, "(after 3 attempts)"])
            let byDefault = try await bucket.pullback(fx, list)
            expectCleanFailure(byDefault, mentioning: [endpoint, "(after 6 attempts)"])

            // Stopped when the restore starts, back a couple of seconds later: the retries carry it through.
            let restored = fx.target("restored")
            let restore = try bucket.spawnPullback(
                fx, ["restore", "--repo", repo, Self.domain, "--to", restored, "--format", "raw", "--retries", "12"])
            try await Task.sleep(for: .seconds(2))
            try await bucket.restartServer()
            try requireSuccess(try await restore.waitForExit(timeout: .seconds(120)))
            try await expectSameFixtureDisks(fx, restored, as: reference)
            await bucket.close()
        }
    }

    @Test(
        "--retries 101 is an argument error (exit 64, one line) on each command that took it, before anything is made",
        .timeLimit(.minutes(1)))
    func outOfRange() async throws {
        try await Fixture.run { fx in
            let repo = fx.path("repo")
            let commands: [[String]] = [
                ["init", "--repo", repo],
                ["list", "--repo", repo],
                ["restore", "--repo", repo, "d", "--to", fx.target("out")],
                ["verify", "--repo", repo],
                ["prune", "--repo", repo, "d", "--keep", "1"],
                ["serve", "--repo", repo, "d", "--socket", fx.path("socket")],
                ["checkpoints", "d", "--repo", repo],
                ["sync", "--from", fx.path("other"), "--to", repo, "--init"],
            ]
            for command in commands {
                let result = try await Pullback.run(fx, command + ["--retries", "101"])
                #expect(
                    result.stderrLines.map(String.init)
                        == ["pullback: error: --retries must be from 0 to 100; see 'pullback \(command[0]) --help'"],
                    "\(result)")
                #expect(result.exitCode == 64 && result.stdout.isEmpty, "\(result)")
            }
            #expect(
                !FileFacts.exists(repo) && !FileFacts.exists(fx.target("out")) && !FileFacts.exists(fx.path("socket")))
        }
    }
}
