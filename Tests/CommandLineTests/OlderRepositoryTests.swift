import Foundation
import Testing

extension CopyIntegration {
    /// A repository an earlier build wrote (Tests/Fixtures/older-repository, made by its make.sh with the build of
    /// commit a61c77e: a full, two incrementals, a synthetic full and an incremental over it, through a real guest)
    /// lists, verifies, restores every point to the bytes the guest had, opens with qemu-img, and prunes by merging
    /// and by removal, with the build under test.
    @Suite("a repository an earlier build wrote")
    struct OlderRepositoryTests {
        static let domain = "older-fixture"

        /// The fixture folder, found from this file's path: <root>/Tests/CommandLineTests/OlderRepositoryTests.swift.
        static var fixtureFolder: String {
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("Fixtures/older-repository").path
        }

        /// Per point (in the order they were made) and disk, the SHA-256 of the disk as the guest had it.
        static func expectedDigests() throws -> [[String: String]] {
            var points: [[String: String]] = []
            let text = try String(contentsOfFile: fixtureFolder + "/expected.sha256", encoding: .utf8)
            for line in text.split(whereSeparator: \.isNewline) {
                let fields = line.split(separator: " ").map(String.init)
                guard fields.count == 3, let index = Int(fields[0]), index >= 1 else {
                    throw HarnessError("expected.sha256: unreadable line \(line)")
                }
                while points.count < index { points.append([:]) }
                points[index - 1][fields[1]] = fields[2]
            }
            return points
        }

        /// A private copy of the fixture (git keeps no modes: folders 0700, files 0600, as pullback writes them).
        static func copyOfFixture(_ fx: Fixture) async throws -> String {
            let repo = fx.path("repo")
            try await fx.runChecked(["cp", "-R", fixtureFolder + "/repo", repo])
            try await fx.runChecked(["find", repo, "-type", "d", "-exec", "chmod", "700", "{}", "+"])
            try await fx.runChecked(["find", repo, "-type", "f", "-exec", "chmod", "600", "{}", "+"])
            return repo
        }

        static func sha256(_ fx: Fixture, _ path: String) async throws -> String {
            let sum = try await fx.runChecked(["sha256sum", path])
            return sum.stdout.split(separator: " ").first.map(String.init) ?? ""
        }

        /// The ids `list --json` gives, oldest first.
        static func pointIDs(_ fx: Fixture, _ repo: String) async throws -> [String] {
            let list = try await Pullback.run(fx, ["list", "--repo", repo, domain, "--json"])
            try requireSuccess(list)
            let points = try #require(
                try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]])
            return points.compactMap { $0["id"] as? String }
        }

        /// Every listed point restores, as raw disks, to the bytes `expected` gives for it.
        static func expectRestores(
            _ fx: Fixture, _ repo: String, _ expected: [String: [String: String]], label: String
        ) async throws {
            for (id, disks) in expected.sorted(by: { $0.key < $1.key }) {
                let folder = fx.path("restored-\(label)-\(id)")
                try requireSuccess(
                    try await Pullback.run(
                        fx, ["restore", "--repo", repo, domain, "--at", id, "--to", folder, "--format", "raw"]))
                for (disk, digest) in disks {
                    #expect(try await sha256(fx, "\(folder)/\(disk).raw") == digest, "\(label): \(id) \(disk)")
                }
                try await fx.runChecked(["rm", "-rf", folder])
            }
        }

        @Test("lists, verifies, restores, opens with qemu-img and prunes unchanged", .timeLimit(.minutes(3)))
        func olderRepository() async throws {
            try await Fixture.run { fx in
                let repo = try await Self.copyOfFixture(fx)
                let ids = try await Self.pointIDs(fx, repo)
                let digests = try Self.expectedDigests()
                try #require(ids.count == 5 && digests.count == 5, "\(ids)")
                var expected = Dictionary(uniqueKeysWithValues: zip(ids, digests))

                let verify = try await Pullback.run(
                    fx, ["verify", "--repo", repo, Self.domain, "--at", "all", "--content"])
                try requireSuccess(verify)
                #expect(
                    verify.stdout.split(whereSeparator: \.isNewline).last
                        == "checked 5 points of 1 domain, 10 images, 10 disk contents: all as committed", "\(verify)")
                try await Self.expectRestores(fx, repo, expected, label: "as-made")

                // The newest point's chain opens with qemu-img alone, through its relative backing names.
                let newest = "\(repo)/\(Self.domain)/\(ids[4])/vda.qcow2"
                let converted = fx.path("newest-vda.raw")
                try await fx.runChecked(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", newest, converted])
                #expect(try await Self.sha256(fx, converted) == digests[4]["vda"])

                // Keeping four merges the second point into a full; keeping two then removes up to the synthetic full.
                let merge = try await Pullback.run(fx, ["prune", "--repo", repo, Self.domain, "--keep", "4"])
                try requireSuccess(merge)
                #expect(merge.stdout.contains("older-fixture: 4 kept, 1 merged, 1 removed"), "\(merge)")
                expected[ids[0]] = nil
                #expect(try await Self.pointIDs(fx, repo) == Array(ids.dropFirst()))
                let afterMerge = try await Pullback.run(
                    fx, ["verify", "--repo", repo, Self.domain, "--at", "all", "--content"])
                try requireSuccess(afterMerge)
                try await Self.expectRestores(fx, repo, expected, label: "merged")

                let remove = try await Pullback.run(fx, ["prune", "--repo", repo, Self.domain, "--keep", "2"])
                try requireSuccess(remove)
                #expect(try await Self.pointIDs(fx, repo) == Array(ids.suffix(2)))
                expected = expected.filter { ids.suffix(2).contains($0.key) }
                try requireSuccess(
                    try await Pullback.run(fx, ["verify", "--repo", repo, Self.domain, "--at", "all", "--content"]))
                try await Self.expectRestores(fx, repo, expected, label: "pruned")
            }
        }
    }
}
