import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

extension BackupIntegration {
    /// A repository in a bucket when things go wrong: pullback killed mid-upload, the store gone for a moment or for
    /// good, two backups of one domain at once, a lock left by a dead run, and bucket contents made by a hostile hand.
    /// Nothing half-written is ever listed, what a dead run left is cleaned up by the next, and every refusal is one
    /// line that never reaches outside the repository's prefix.
    @Suite("faults and hostile contents of a bucket repository (SeaweedFS)", .serialized)
    struct BucketFaultTests {
        /// The points of `domain` that `pullback list --repo REPO --json` shows (the whole listing: a domain named
        /// on the command line must have points); it must succeed.
        static func listed(_ bucket: TestBucket, _ fx: Fixture, repo: String, domain: String) async throws
            -> [ListedPoint]
        {
            let result = try await bucket.pullback(fx, ["list", "--repo", repo, "--json"])
            try requireSuccess(result)
            return try JSONDecoder().decode([ListedPoint].self, from: Data(result.stdout.utf8)).filter {
                $0.domain == domain
            }
        }

        /// Starts `pullback ARGUMENTS` and returns it once the bucket shows an unfinished multipart upload under
        /// `prefix` (the image is being uploaded), stopped (SIGSTOP) there so that the test acts mid-upload.
        static func suspendedMidUpload(
            _ bucket: TestBucket, _ fx: Fixture, _ arguments: [String], prefix: String,
            sourceLocation: SourceLocation = #_sourceLocation
        ) async throws -> ChildProcess {
            let child = try bucket.spawnPullback(fx, arguments)
            _ = try await waitUntil(timeout: .seconds(90), every: .milliseconds(20)) {
                guard child.isRunning else { return true }
                return (try? await bucket.unfinishedUploads(under: prefix))?.isEmpty == false
            }
            child.suspend()
            try #require(
                child.isRunning,
                "the backup ended before an upload was seen: \(child.result())", sourceLocation: sourceLocation)
            return child
        }

        /// Rewrites fields of the lock object `key`: its expiry in the past, as a holder that died long ago leaves
        /// it, or its host another one's, as a holder elsewhere takes it.
        static func editLock(_ bucket: TestBucket, _ key: String, _ fields: [String: String]) async throws {
            var record = try #require(
                try JSONSerialization.jsonObject(with: Data(try await bucket.object(key))) as? [String: Any])
            for (name, value) in fields { record[name] = value }
            try await bucket.put(key, Array(try JSONSerialization.data(withJSONObject: record, options: .sortedKeys)))
        }

        /// The lock record's owner (the process id of the run that took it).
        static func lockOwner(_ bucket: TestBucket, _ key: String) async throws -> String? {
            let record = try JSONSerialization.jsonObject(with: Data(try await bucket.object(key))) as? [String: Any]
            return record?["owner"] as? String
        }

        @Test(
            "backup killed mid-upload: a second backup meanwhile is refused naming the holder, nothing is listed, a lock held from another host is refused until it expires, then taken over; the leftover upload is aborted and the point restores identical",
            .timeLimit(.minutes(4)))
        func killedMidUpload() async throws {
            try await LibvirtGuest.run(disks: [("vda", 160 * mib)], driver: .daemon) { fx, guest in
                let bucket = try await TestBucket.make(fx)
                defer { bucket.server.stop() }
                let repo = "s3://\(bucket.name)/hosts/one"
                let domainPrefix = "hosts/one/\(guest.name)/"
                let lockKey = domainPrefix + ".lock"
                let backup = ["backup", guest.name, "--repo", repo, "--connect", guest.uri, "--json"]
                try requireSuccess(try await bucket.pullback(fx, ["init", "--repo", repo]))
                try await guest.write("vda", "write -P 0x61 0 64M", "write -P 0x62 150M 64k")

                let first = try await Self.suspendedMidUpload(bucket, fx, backup, prefix: domainPrefix)
                let second: CommandResult
                do {
                    second = try await bucket.pullback(fx, backup)
                } catch {
                    first.kill()
                    throw error
                }
                first.kill()
                let killed = try await first.waitForExit(timeout: .seconds(30))
                #expect(killed.signal == SIGKILL, "\(killed)")
                expectCleanFailure(second, mentioning: ["another backup", "process \(first.pid)"])

                // Nothing of the killed run is listed; its upload and its lock are still in the bucket.
                #expect(try await Self.listed(bucket, fx, repo: repo, domain: guest.name).isEmpty)
                #expect(!(try await bucket.unfinishedUploads(under: domainPrefix)).isEmpty)
                #expect(try await Self.lockOwner(bucket, lockKey) == "\(first.pid)")

                // A dead process of this host holds no lock; a holder on another host does until its lock expires.
                try await Self.editLock(bucket, lockKey, ["host": "elsewhere.example"])
                let refused = try await bucket.pullback(fx, backup)
                expectCleanFailure(refused, mentioning: ["another backup", "process \(first.pid)"])
                #expect(try await Self.listed(bucket, fx, repo: repo, domain: guest.name).isEmpty)

                // Once it has expired, the next backup takes it over, aborts the leftover upload and makes a point.
                try await Self.editLock(bucket, lockKey, ["expiresAt": "2001-01-01T00:00:00Z"])
                let snapshot = try await guest.snapshot("1")
                let after = try await bucket.pullback(fx, backup)
                try requireSuccess(after)
                let summary = try BackupSummary.decode(after)
                #expect(try await bucket.unfinishedUploads(under: domainPrefix) == [])
                #expect(try await Self.listed(bucket, fx, repo: repo, domain: guest.name).map(\.id) == [summary.point])
                #expect(try await bucket.keys(under: lockKey).isEmpty, "the lock outlived the run that took it over")
                try await CopyIntegration.BucketRepositoryTests.expectRestores(
                    guest, bucket, repo: repo, at: summary.point, matching: snapshot)
                await bucket.close()
            }
        }

        @Test(
            "store stopped mid-backup and started again: retried, the point restores identical; stopped past the retries: one line, nothing listed, a later backup works",
            .timeLimit(.minutes(4)))
        func storeStopped() async throws {
            try await LibvirtGuest.run(disks: [("vda", 160 * mib)]) { fx, guest in
                let bucket = try await TestBucket.make(fx)
                defer { bucket.server.stop() }
                let repo = "s3://\(bucket.name)/hosts/one"
                let domainPrefix = "hosts/one/\(guest.name)/"
                let backup = ["backup", guest.name, "--repo", repo, "--connect", guest.uri, "--json"]
                try requireSuccess(try await bucket.pullback(fx, ["init", "--repo", repo]))
                try await guest.write("vda", "write -P 0x71 0 64M", "write -P 0x72 150M 64k")

                // Gone for a moment (while pullback is stopped, so the outage lands mid-upload), then back: enough
                // retries ride it out.
                let snap1 = try await guest.snapshot("1")
                let riding = try await Self.suspendedMidUpload(
                    bucket, fx, backup + ["--retries", "20"], prefix: domainPrefix)
                bucket.server.stop()
                riding.resume()
                try await bucket.restartServer()
                let rode = try await riding.waitForExit(timeout: .seconds(120))
                try requireSuccess(rode)
                let full = try BackupSummary.decode(rode)
                #expect(try await bucket.unfinishedUploads(under: domainPrefix) == [])
                try await CopyIntegration.BucketRepositoryTests.expectRestores(
                    guest, bucket, repo: repo, at: full.point, matching: snap1)

                // Gone for longer than the default retries: one line, and nothing new is listed once it is back.
                try await guest.write("vda", "write -P 0x73 8M 40M")
                let snap2 = try await guest.snapshot("2")
                let failing = try await Self.suspendedMidUpload(bucket, fx, backup, prefix: domainPrefix)
                bucket.server.stop()
                failing.resume()
                let failed = try await failing.waitForExit(timeout: .seconds(120))
                try await bucket.restartServer()
                expectCleanFailure(failed, mentioning: ["127.0.0.1:\(bucket.server.port)"])
                #expect(try await Self.listed(bucket, fx, repo: repo, domain: guest.name).map(\.id) == [full.point])

                // A later backup works: the failed run, gone from this host, holds no lock any more; the backup cleans
                // up what it left and continues the chain.
                let later = try await bucket.pullback(fx, backup)
                try requireSuccess(later)
                let inc = try BackupSummary.decode(later)
                #expect(inc.level == "incremental" && inc.parent == full.point, "\(inc)")
                #expect(try await bucket.unfinishedUploads(under: domainPrefix) == [])
                #expect(
                    try await Self.listed(bucket, fx, repo: repo, domain: guest.name).map(\.id)
                        == [full.point, inc.point])
                try await CopyIntegration.BucketRepositoryTests.expectRestores(
                    guest, bucket, repo: repo, at: inc.point, matching: snap2)
                await bucket.close()
            }
        }

        /// Every object under `prefix` with its bytes.
        static func contents(_ bucket: TestBucket, under prefix: String) async throws -> [String: [UInt8]] {
            var contents: [String: [UInt8]] = [:]
            for key in try await bucket.keys(under: prefix).keys { contents[key] = try await bucket.object(key) }
            return contents
        }

        /// The manifest object `key` rewritten through `edit`.
        static func editedManifest(_ bytes: [UInt8], _ edit: (inout [String: Any]) -> Void) throws -> [UInt8] {
            var object = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
            edit(&object)
            return Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
        }

        /// A change of disk `index` of a manifest.
        static func disk(_ index: Int, _ field: String, _ value: Any) -> (inout [String: Any]) -> Void {
            { object in
                var disks = object["disks"] as? [[String: Any]] ?? []
                disks[index][field] = value
                object["disks"] = disks
            }
        }

        @Test(
            "hostile bucket contents: a point key with a control character, manifests with .. names or naming another prefix or domain, a size over 2^63, a short image: one line each, nothing outside the prefix read or written",
            .timeLimit(.minutes(4)))
        func hostileBucket() async throws {
            try await LibvirtGuest.run { fx, guest in
                let bucket = try await TestBucket.make(fx)
                defer { bucket.server.stop() }
                let repo = "s3://\(bucket.name)/hosts/one"
                try requireSuccess(try await bucket.pullback(fx, ["init", "--repo", repo]))
                try await guest.write("vda", "write -P 0x41 0 1M")
                try await guest.write("vdb", "write -P 0x42 0 64k")
                let made = try await bucket.pullback(
                    fx, ["backup", guest.name, "--repo", repo, "--connect", guest.uri, "--json"])
                try requireSuccess(made)
                let point = try BackupSummary.decode(made).point
                let pointPrefix = "hosts/one/\(guest.name)/\(point)/"
                let manifestKey = pointPrefix + "manifest.json"
                let imageKey = pointPrefix + "vda.qcow2"
                let manifest = try await bucket.object(manifestKey)
                let image = try await bucket.object(imageKey)

                // A sibling prefix holding a whole repository of its own (a copy of this one): never touched.
                let repository = try await Self.contents(bucket, under: "hosts/one/")
                for (key, bytes) in repository { try await bucket.put("hosts/two/" + key.dropFirst(10), bytes) }
                let sibling = try await Self.contents(bucket, under: "hosts/two/")
                let other = "../../../two/\(guest.name)/\(point)/vda.qcow2"

                let readers: [[String]] = [
                    ["list", "--repo", repo, guest.name],
                    ["list", "--repo", repo, guest.name, "--json"],
                    ["list", "--repo", repo],
                    ["verify", "--repo", repo, guest.name],
                    ["restore", "--repo", repo, guest.name, "--to", fx.path("out/disks"), "--format", "raw"],
                ]
                let imageReaders = Array(readers.suffix(2))
                let cases: [(label: String, key: String, bytes: [UInt8], commands: [[String]], mentioning: [String])] =
                    [
                        // A key whose segment is `..` cannot be planted here: SeaweedFS 4.48 answers InvalidRequest
                        // to it (BucketStoreTests cover such names); `..` comes in through manifests instead.
                        (
                            "target-escaped", manifestKey,
                            try Self.editedManifest(manifest, Self.disk(0, "target", "../escaped")), readers,
                            ["manifest.json", "disks[0].target"]
                        ),
                        ("escape", "hosts/one/\(guest.name)/x\u{1b}[2J/manifest.json", manifest, readers, ["\\u{1b}"]),
                        (
                            "other-prefix", manifestKey,
                            try Self.editedManifest(manifest, Self.disk(0, "image", other)),
                            readers, ["manifest.json", "disks[0].image"]
                        ),
                        (
                            "other-domain", manifestKey,
                            try Self.editedManifest(manifest) { $0["domainName"] = "other" }, readers,
                            ["manifest.json", "domainName"]
                        ),
                        (
                            "size", manifestKey,
                            try Self.editedManifest(manifest, Self.disk(0, "virtualSize", UInt64.max)), readers,
                            ["manifest.json", "disks[0].virtualSize"]
                        ),
                        ("short-image", imageKey, Array(image.prefix(image.count / 2)), imageReaders, ["vda.qcow2"]),
                    ]
                for entry in cases {
                    let original = entry.key == manifestKey ? manifest : entry.key == imageKey ? image : nil
                    try await bucket.put(entry.key, entry.bytes)
                    for command in entry.commands {
                        let result = try await bucket.pullback(fx, command)
                        expectCleanFailure(result, mentioning: entry.mentioning)
                        if command[0] == "verify" && entry.label == "short-image" {
                            // verify reports each image it checked: the short one as damaged.
                            #expect(
                                result.stdout.contains("\(point)  vda  DAMAGED")
                                    && result.stdout.contains("\(point)  vdb  ok"), "\(result)")
                        } else {
                            #expect(result.stdout.isEmpty, "\(entry.label): \(result)")
                        }
                        #expect(
                            !result.stderr.unicodeScalars.contains { $0.value == 0x1b },
                            "\(entry.label): a raw escape in the error: \(result)")
                    }
                    #expect(
                        (try? FileFacts.listing(fx.path("out/disks"))) ?? [] == [],
                        "\(entry.label): a disk was restored")
                    if let original {
                        try await bucket.put(entry.key, original)
                    } else {
                        try await bucket.delete(entry.key)
                    }
                }

                // Nothing outside the prefix was written or removed, and the repository itself is whole again.
                #expect(try await Self.contents(bucket, under: "hosts/two/") == sibling)
                #expect(Set(try await bucket.keys(under: "").keys).subtracting(sibling.keys) == Set(repository.keys))
                try requireSuccess(try await bucket.pullback(fx, ["verify", "--repo", repo, guest.name]))
                await bucket.close()
            }
        }
    }
}
