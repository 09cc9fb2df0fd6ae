import Foundation
import S3
import TestSupport
import Testing

extension BackupIntegration {
    /// `prune` of a repository in an S3 bucket (SeaweedFS on loopback): the kept incremental point becomes a synthetic
    /// full that restores identical, installed object by object; a rewrite a killed prune staged whole is finished by
    /// the next run.
    @Suite("prune in an S3 bucket (SeaweedFS, embedded libvirt)", .serialized)
    struct BucketPruneTests {
        typealias Bucket = TestBucket

        /// Every key of `bucket` under `prefix`, all pages.
        static func keys(_ bucket: Bucket, under prefix: String) async throws -> [String] {
            let (client, name) = (bucket.client, bucket.name)
            return try await TestBucket.onThread {
                var keys: [String] = []
                var token: String?
                repeat {
                    let page = try client.listObjects(
                        bucket: name, prefix: prefix, delimiter: nil, continuationToken: token)
                    keys += page.objects.map(\.key)
                    token = page.nextContinuationToken
                } while token != nil
                return keys
            }
        }

        /// Copies every object under `source` to the same name under `target`, in the store; returns the names
        /// (under the prefixes) copied.
        @discardableResult
        static func copyObjects(_ bucket: Bucket, from source: String, to target: String) async throws -> [String] {
            let keys = try await keys(bucket, under: source)
            let (client, bucketName) = (bucket.client, bucket.name)
            return try await TestBucket.onThread {
                var names: [String] = []
                // Folder markers ("x/") are no objects of the repository.
                for key in keys where !key.hasSuffix("/") {
                    let name = String(key.dropFirst(source.count))
                    guard let head = try client.headObject(bucket: bucketName, key: key) else {
                        throw HarnessError("\(key) vanished while it was copied")
                    }
                    try client.copyObject(
                        bucket: bucketName, sourceKey: key, sourceSize: head.size, to: target + name)
                    names.append(name)
                }
                return names
            }
        }

        /// Restores point `id` from `repo` as raw images into a folder named by `label` and compares each with
        /// `snapshot`.
        static func expectRestores(
            _ guest: LibvirtGuest, _ bucket: Bucket, repo: String, at id: String, label: String,
            matching snapshot: [String: String], sourceLocation: SourceLocation = #_sourceLocation
        ) async throws {
            let folder = guest.fx.target("restore-\(label)")
            let restored = try await bucket.pullback(
                guest.fx, ["restore", "--repo", repo, guest.name, "--at", id, "--to", folder, "--format", "raw"])
            try requireSuccess(restored, sourceLocation: sourceLocation)
            for (target, reference) in snapshot {
                let compare = try await guest.fx.run(["cmp", "\(folder)/\(target).raw", reference])
                #expect(compare.succeeded, "\(label) \(target): \(compare)", sourceLocation: sourceLocation)
            }
        }

        @Test(
            "--keep 1 merges the newest incremental into a full that restores identical and verifies, the older points' objects gone; a rewrite staged whole by a killed prune is installed by the next backup",
            .timeLimit(.minutes(4)))
        func pruneInBucket() async throws {
            try await LibvirtGuest.run { fx, guest in
                let bucket = try await Bucket.make(fx)
                defer { bucket.server.stop() }
                let one = "s3://\(bucket.name)/hosts/one"
                let two = "s3://\(bucket.name)/hosts/two"
                try requireSuccess(try await bucket.pullback(fx, ["init", "--repo", one]))
                func backup() async throws -> BackupSummary {
                    let result = try await bucket.pullback(
                        fx, ["backup", guest.name, "--repo", one, "--connect", guest.uri, "--json"])
                    try requireSuccess(result)
                    return try BackupSummary.decode(result)
                }
                func list(_ repo: String) async throws -> [ListedPoint] {
                    let result = try await bucket.pullback(fx, ["list", "--repo", repo, "--json"])
                    try requireSuccess(result)
                    return try JSONDecoder().decode([ListedPoint].self, from: Data(result.stdout.utf8))
                }

                try await guest.write("vda", "write -P 0x5a 1M 128k", "write -P 0x11 8M 8M")
                try await guest.write("vdb", "write -P 0x22 0 1M")
                let full = try await backup()
                try await guest.write("vda", "write -z 1M 64k", "write -P 0x33 65535 3", "write -P 0x45 12M 100k")
                let inc1 = try await backup()
                try await guest.write("vda", "write -P 0x77 9M 64k", "write -P 0x88 200000 70000")
                try await guest.write("vdb", "write -P 0x66 512k 64k")
                let inc2 = try await backup()
                let snap3 = try await guest.snapshot("3")
                #expect([full.level, inc1.level, inc2.level] == ["full", "incremental", "incremental"])

                // A copy of the repository at hosts/two, pruned to its newest point.
                let oneDomain = "hosts/one/\(guest.name)/"
                let twoDomain = "hosts/two/\(guest.name)/"
                try await Self.copyObjects(bucket, from: "hosts/one/", to: "hosts/two/")
                let pruned = try await bucket.pullback(
                    fx, ["prune", "--repo", two, guest.name, "--keep", "1", "--connect", guest.uri, "--json"])
                try requireSuccess(pruned)
                let summary = try #require(
                    try JSONSerialization.jsonObject(with: Data(pruned.stdout.utf8)) as? [String: Any], "\(pruned)")
                #expect(summary["merged"] as? [String] == [inc2.point], "\(pruned)")
                #expect(summary["removed"] as? [String] == [inc1.point, full.point], "\(pruned)")
                let kept = try await list(two)
                #expect(kept.map(\.id) == [inc2.point] && kept.map(\.level) == ["full"], "\(kept)")
                #expect(kept.first?.parent == nil, "\(kept)")
                let manifest = try await bucket.object(twoDomain + inc2.point + "/manifest.json")
                let fields = try JSONSerialization.jsonObject(with: Data(manifest)) as? [String: Any]
                #expect(
                    fields?["level"] as? String == "full" && fields?["synthetic"] as? Bool == true, "\(fields ?? [:])")
                try await Self.expectRestores(
                    guest, bucket, repo: two, at: inc2.point, label: "pruned", matching: snap3)
                try requireSuccess(try await bucket.pullback(fx, ["verify", "--repo", two, guest.name]))
                // Only the kept point's objects are left: nothing of the removed points, no staging prefix.
                let left = try await Self.keys(bucket, under: twoDomain)
                #expect(!left.isEmpty, "\(left)")
                for key in left {
                    let name = key.dropFirst(twoDomain.count)
                    #expect(name.hasPrefix(inc2.point + "/") || name.hasPrefix("."), "left in the bucket: \(key)")
                    // By the first component: two points in one second have ids where one is a prefix of the other.
                    let point = name.split(separator: "/", maxSplits: 1).first.map(String.init) ?? ""
                    #expect(point != full.point && point != inc1.point && !name.contains(".partial"), "\(key)")
                }

                // In hosts/one, what a prune killed while installing leaves: the merged point staged whole (the one
                // pruned at hosts/two), its vda image already installed over the live point's, not the manifest.
                let staging = oneDomain + inc2.point + ".rewrite.copy.partial/"
                let staged = try await Self.copyObjects(bucket, from: twoDomain + inc2.point + "/", to: staging)
                #expect(staged.contains("manifest.json") && staged.contains("vda.qcow2"), "\(staged)")
                try await Self.copyObjects(
                    bucket, from: twoDomain + inc2.point + "/vda.qcow2", to: oneDomain + inc2.point + "/vda.qcow2")
                // A standalone image under a manifest that names a backing file is refused, never read.
                #expect(try await list(one).map(\.level) == ["full", "incremental", "incremental"])
                let refused = try await bucket.pullback(
                    fx,
                    [
                        "restore", "--repo", one, guest.name, "--at", inc2.point, "--to", fx.target("refused"),
                        "--format", "raw",
                    ])
                #expect(!refused.succeeded && refused.stderr.contains("vda"), "\(refused)")

                // The next backup installs the staged point first, then goes on incrementally from it.
                try await guest.write("vda", "write -P 0x99 3M 64k")
                let next = try await backup()
                let snap4 = try await guest.snapshot("4")
                #expect(next.level == "incremental" && next.parent == inc2.point, "\(next)")
                let listed = try await list(one)
                #expect(listed.map(\.id) == [full.point, inc1.point, inc2.point, next.point], "\(listed)")
                #expect(listed.map(\.level) == ["full", "incremental", "full", "incremental"], "\(listed)")
                #expect(try await bucket.object(oneDomain + inc2.point + "/manifest.json") == manifest)
                #expect(try await Self.keys(bucket, under: staging).isEmpty)
                try await Self.expectRestores(
                    guest, bucket, repo: one, at: inc2.point, label: "installed", matching: snap3)
                try await Self.expectRestores(
                    guest, bucket, repo: one, at: next.point, label: "next", matching: snap4)
                try requireSuccess(try await bucket.pullback(fx, ["verify", "--repo", one, guest.name]))
                await bucket.close()
            }
        }
    }
}
