import Foundation
import TestSupport
import Testing

extension CopyIntegration {
    /// A repository in an S3 bucket (SeaweedFS on loopback): the same commands as for a folder, with the keys and the
    /// endpoint from the environment; points that restore byte-identical, damage that verify names, a point served
    /// over NBD from the bucket.
    @Suite("backups in an S3 bucket (SeaweedFS, embedded libvirt)", .serialized)
    struct BucketRepositoryTests {
        /// Restores point `id` of `guest`'s domain from `repo` as raw images and compares each with `snapshot`.
        static func expectRestores(
            _ guest: LibvirtGuest, _ bucket: TestBucket, repo: String, at id: String,
            matching snapshot: [String: String],
            sourceLocation: SourceLocation = #_sourceLocation
        ) async throws {
            let fx = guest.fx
            let folder = fx.target("restore-\(id)-\(UInt32.random(in: 0...UInt32.max))")
            let restored = try await bucket.pullback(
                fx, ["restore", "--repo", repo, guest.name, "--at", id, "--to", folder, "--format", "raw"])
            try requireSuccess(restored, sourceLocation: sourceLocation)
            for (target, reference) in snapshot {
                let compare = try await fx.run(["cmp", "\(folder)/\(target).raw", reference])
                #expect(compare.succeeded, "\(id) \(target): \(compare)", sourceLocation: sourceLocation)
            }
        }

        /// The bytes a `sync --json` copied, over its domains.
        static func syncedBytes(_ result: CommandResult) throws -> Int {
            let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
            let domains = object?["domains"] as? [[String: Any]] ?? []
            return domains.reduce(0) { $0 + (($1["bytes"] as? Int) ?? 0) }
        }

        @Test(
            "full and two incrementals straight into a bucket, zstd-compressed, restore identical; verify names a flipped byte and a missing object; a point served from the bucket compares identical",
            .timeLimit(.minutes(4)))
        func backupIntoBucket() async throws {
            try await LibvirtGuest.run { fx, guest in
                let bucket = try await TestBucket.make(fx)
                defer { bucket.server.stop() }
                let repo = "s3://\(bucket.name)/hosts/one"
                try requireSuccess(try await bucket.pullback(fx, ["init", "--repo", repo]))
                func backup(_ extra: [String] = []) async throws -> BackupSummary {
                    let result = try await bucket.pullback(
                        fx, ["backup", guest.name, "--repo", repo, "--connect", guest.uri, "--json"] + extra)
                    try requireSuccess(result)
                    return try BackupSummary.decode(result)
                }

                try await guest.write("vda", "write -P 0x5a 1M 128k", "write -P 0x11 8M 8M")
                try await guest.write("vdb", "write -P 0x22 0 1M")
                // Compressed images go into the bucket as any others: packed clusters, placed parts.
                let full = try await backup(["--compress", "zstd"])
                let snap1 = try await guest.snapshot("1")
                try await guest.write("vda", "write -z 1M 64k", "write -P 0x33 65535 3", "write -P 0x45 12M 100k")
                let inc1 = try await backup()
                let snap2 = try await guest.snapshot("2")
                try await guest.write("vda", "write -P 0x77 9M 64k", "write -P 0x88 200000 70000")
                let inc2 = try await backup()
                let snap3 = try await guest.snapshot("3")
                #expect([full.level, inc1.level, inc2.level] == ["full", "incremental", "incremental"])
                #expect(inc1.parent == full.point && inc2.parent == inc1.point)
                let inc2Read = inc2.disk("vda")?.bytesRead ?? -1
                #expect(inc2Read > 0 && inc2Read <= Int64(mib), "an incremental reads what changed: \(inc2)")

                let listed = try await bucket.pullback(fx, ["list", "--repo", repo, "--json"])
                try requireSuccess(listed)
                for point in [full.point, inc1.point, inc2.point] {
                    #expect(listed.stdout.contains(point), "\(listed.stdout)")
                }
                let points = try JSONDecoder().decode([ListedPoint].self, from: Data(listed.stdout.utf8))
                #expect(points.map(\.compression) == ["zstd:3", "zstd:3", "zstd:3"], "\(listed.stdout)")
                for (point, snapshot) in [(full.point, snap1), (inc1.point, snap2), (inc2.point, snap3)] {
                    try await Self.expectRestores(guest, bucket, repo: repo, at: point, matching: snapshot)
                }

                // The objects are where the layout says, and nothing else is left (no staging, no upload).
                let verified = try await bucket.pullback(fx, ["verify", "--repo", repo, guest.name])
                try requireSuccess(verified)

                // One byte of inc1's vda flipped in the bucket: verify fails naming it; put back, it passes again.
                let damagedKey = "hosts/one/\(guest.name)/\(inc1.point)/vda.qcow2"
                let original = try await bucket.object(damagedKey)
                var damaged = original
                damaged[damaged.count / 2] ^= 0xff
                try await bucket.put(damagedKey, damaged)
                let caught = try await bucket.pullback(fx, ["verify", "--repo", repo, guest.name])
                #expect(!caught.succeeded && caught.stderr.contains("\(inc1.point)/vda.qcow2"), "\(caught)")
                try await bucket.put(damagedKey, original)

                // The point served from the bucket reads as the disk did.
                let (server, uris) = try await ServeTests.start(
                    fx, ["--repo", repo, guest.name, "--at", inc1.point, "--socket", fx.path("bucket-serve.sock")],
                    exports: 2, under: bucket.environmentCommand)
                let vda = try #require(uris.first { $0.contains("vda") }, "\(uris)")
                let compare = try await fx.run(
                    ["qemu-img", "compare", "-f", "raw", vda, "-F", "raw", try #require(snap2["vda"])])
                #expect(compare.succeeded, "\(compare)")
                server.interrupt()
                _ = try await server.waitForExit(timeout: .seconds(20))

                // sync: bucket -> folder -> another prefix of the bucket -> another folder; the last restores identical
                // and verifies, and a second sync into the bucket copies nothing.
                let folder = fx.path("synced-folder")
                let otherPrefix = "s3://\(bucket.name)/hosts/copy"
                let last = fx.path("synced-again")
                for (from, to) in [(repo, folder), (folder, otherPrefix), (otherPrefix, last)] {
                    let synced = try await bucket.pullback(
                        fx, ["sync", "--from", from, "--to", to, "--init", "--json"])
                    try requireSuccess(synced)
                    #expect(try Self.syncedBytes(synced) > 0, "\(synced.stdout)")
                }
                let again = try await bucket.pullback(
                    fx, ["sync", "--from", folder, "--to", otherPrefix, "--json"])
                try requireSuccess(again)
                #expect(try Self.syncedBytes(again) == 0, "\(again.stdout)")
                for (point, snapshot) in [(full.point, snap1), (inc1.point, snap2), (inc2.point, snap3)] {
                    try await Self.expectRestores(guest, bucket, repo: last, at: point, matching: snapshot)
                }
                try requireSuccess(
                    try await bucket.pullback(fx, ["verify", "--repo", last, guest.name, "--at", "all"]))

                // A missing object is named.
                let missingKey = "hosts/one/\(guest.name)/\(full.point)/vdb.qcow2"
                try await bucket.delete(missingKey)
                let missing = try await bucket.pullback(fx, ["verify", "--repo", repo, guest.name])
                #expect(!missing.succeeded && missing.stderr.contains("\(full.point)/vdb.qcow2"), "\(missing)")
                await bucket.close()
            }
        }
    }
}
