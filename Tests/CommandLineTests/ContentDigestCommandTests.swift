import Foundation
import TestSupport
import Testing

extension CopyIntegration {
    /// `pullback digest` and `pullback verify --content` on a real guest's points. Every digest of the same bytes
    /// (the manifest's, a point read from the repository, its restored images, the guest's reference raw file, that
    /// file served over NBD) must be one, and equal to an independent Python computation of the reference
    /// (``ContentDigestReference``).
    @Suite("pullback digest, verify --content (embedded libvirt)", .serialized)
    struct ContentDigestCommandTests {
        /// `{"domain", "point", "disks": [...]}` of `pullback digest --repo --json`, and `verify --json`'s contents.
        struct DiskCheck: Decodable {
            let domain: String
            let point: String
            let target: String
            let status: String
            let recorded: String?
            let actual: String?
        }

        struct PointReport: Decodable {
            let domain: String
            let point: String
            let disks: [DiskCheck]
        }

        struct VerifyReport: Decodable {
            let point: String
            let contents: [DiskCheck]?
        }

        /// Each disk's `contentDigest` in the manifest of `point`, by target (absent ones left out).
        static func recordedDigests(_ guest: LibvirtGuest, _ point: String) throws -> [String: String] {
            let manifest = "\(guest.repo)/\(guest.name)/\(point)/manifest.json"
            let object = try JSONSerialization.jsonObject(with: try FileFacts.contents(manifest))
            let disks = (object as? [String: Any])?["disks"] as? [[String: Any]] ?? []
            var digests: [String: String] = [:]
            for disk in disks {
                if let target = disk["target"] as? String { digests[target] = disk["contentDigest"] as? String }
            }
            return digests
        }

        /// `pullback digest SOURCE EXTRA...`, which must print exactly `DIGEST  SOURCE`; returns DIGEST.
        static func digest(
            _ fx: Fixture, _ source: String, _ extra: [String] = [], sourceLocation: SourceLocation = #_sourceLocation
        ) async throws -> String {
            let result = try await Pullback.run(fx, ["digest", source] + extra)
            try requireSuccess(result, sourceLocation: sourceLocation)
            let line = result.stdout.trimmingCharacters(in: .newlines)
            let digest = String(line.prefix { $0 != " " })
            #expect(
                line == "\(digest)  \(source)" && digest.hasPrefix("sha256-tree:") && digest.count == 12 + 64,
                "digest of \(source): \(result)", sourceLocation: sourceLocation)
            return digest
        }

        /// The digest of the raw file `raw` as a disk of its size, by the independent Python computation.
        static func reference(_ fx: Fixture, _ raw: String) async throws -> String {
            let script = try ContentDigestReference.writeScript(into: fx.root)
            let size = try FileFacts.size(raw)
            return try await fx.runChecked(["python3", script, raw, String(size)]).stdout
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }

        /// `pullback digest --repo REPO NAME --at POINT --json`, decoded.
        static func pointDigest(_ guest: LibvirtGuest, _ point: String, _ extra: [String] = []) async throws
            -> PointReport
        {
            let result = try await guest.pullback(
                ["digest", "--repo", guest.repo, guest.name, "--at", point, "--json"] + extra)
            try requireSuccess(result)
            return try JSONDecoder().decode(PointReport.self, from: Data(result.stdout.utf8))
        }

        @Test(
            "A full and an incremental point: manifest, digest --repo, restored raw and qcow2, the reference file, that file over NBD and Python agree; one byte changes it",
            .timeLimit(.minutes(4)))
        func digestsAgree() async throws {
            try await LibvirtGuest.run(disks: [("vda", 16 * mib), ("vdb", 8 * mib + 3 * 512)]) { fx, guest in
                // Data, zeros written over data and over holes, holes, and a short last block on vdb.
                try await guest.write(
                    "vda", "write -P 0x41 0 1M", "write -P 0x42 3M 256k", "write -z 3M 128k", "write -z 6M 64k")
                try await guest.write("vdb", "write -P 0x43 1M 64k", "write -P 0x44 \(8 * mib) 1536")
                let (full, _) = try await BackupTests.backup(guest)
                let snap1 = try await guest.snapshot("1")
                try await guest.write("vda", "write -P 0x45 512k 3", "write -z 0 64k", "write -P 0x46 10M 70k")
                try await guest.write("vdb", "write -z 1M 64k")
                let (inc, _) = try await BackupTests.backup(guest)
                #expect([full.level, inc.level] == ["full", "incremental"])
                let snap2 = try await guest.snapshot("2")

                var seen: [String: String] = [:]
                for (point, snap) in [(full.point, snap1), (inc.point, snap2)] {
                    let recorded = try Self.recordedDigests(guest, point)
                    #expect(recorded.keys.sorted() == ["vda", "vdb"], "\(point): \(recorded)")
                    let fromRepo = try await Self.pointDigest(guest, point)
                    #expect(fromRepo.domain == guest.name && fromRepo.point == point)
                    #expect(fromRepo.disks.map(\.target) == ["vda", "vdb"], "\(fromRepo)")
                    let rawDir = fx.target("\(point)-raw")
                    let qcow2Dir = fx.target("\(point)-qcow2")
                    try requireSuccess(
                        try await guest.pullback([
                            "restore", "--repo", guest.repo, guest.name, "--at", point, "--to", rawDir, "--format",
                            "raw",
                        ]))
                    try requireSuccess(
                        try await guest.pullback([
                            "restore", "--repo", guest.repo, guest.name, "--at", point, "--to", qcow2Dir,
                        ]))
                    for target in ["vda", "vdb"] {
                        let reference = try #require(snap[target])
                        let expected = try await Self.reference(fx, reference)
                        let disk = try #require(fromRepo.disks.first { $0.target == target })
                        #expect(recorded[target] == expected, "\(point) \(target): manifest")
                        #expect(
                            disk.actual == expected && disk.recorded == expected && disk.status == "ok",
                            "\(point) \(target): digest --repo \(disk)")
                        #expect(try await Self.digest(fx, "\(rawDir)/\(target).raw") == expected, "restored raw")
                        #expect(try await Self.digest(fx, "\(qcow2Dir)/\(target).qcow2") == expected, "qcow2")
                        #expect(try await Self.digest(fx, reference) == expected, "\(point) \(target) reference")
                        let server = try await NBDServer.qemuNBD(fx, image: reference, format: "raw")
                        #expect(try await Self.digest(fx, server.uri()) == expected, "\(point) \(target) NBD")
                        server.stop()
                        seen["\(point) \(target)"] = expected
                    }
                }
                #expect(Set(seen.values).count == 4, "every disk at every point reads other bytes: \(seen)")

                // The text form: one line per disk, as sha256sum prints them, and whether it is as recorded.
                let text = try await guest.pullback(["digest", "--repo", guest.repo, guest.name])
                try requireSuccess(text)
                #expect(
                    text.stdout
                        == ["vda", "vdb"].map {
                            "\(seen["\(inc.point) \($0)"] ?? "")  pbg/\(inc.point)/\($0)  as recorded\n"
                        }
                        .joined(), "\(text)")
                let one = try await Self.pointDigest(guest, full.point, ["--disk", "vdb"])
                #expect(one.disks.map(\.target) == ["vdb"] && one.disks[0].actual == seen["\(full.point) vdb"])

                // One byte changed: another digest, which Python agrees with.
                let changed = fx.path("changed.raw")
                try await fx.runChecked(["cp", "--sparse=always", try #require(snap2["vda"]), changed])
                try FileFacts.overwrite(changed, at: 5 * UInt64(mib) + 17, with: Data([1]))
                let changedDigest = try await Self.digest(fx, changed)
                #expect(changedDigest != seen["\(inc.point) vda"])
                #expect(changedDigest == (try await Self.reference(fx, changed)))

                try await Self.replacedImageIsFound(guest, full: full.point, inc: inc.point)
                try await Self.badInput(guest, point: inc.point)
            }
        }

        /// The incremental point's vda image replaced by another valid qcow2 of the same size and backing file, with
        /// the manifest's imageDigest doctored to match it: plain verify says ok, `verify --content` and `digest
        /// --repo` fail naming the point, the disk and both digests.
        static func replacedImageIsFound(_ guest: LibvirtGuest, full: String, inc: String) async throws {
            let fx = guest.fx
            let folder = "\(guest.repo)/\(guest.name)/\(inc)"
            let forged = fx.path("forged.qcow2")
            try await fx.runChecked(["qemu-img", "create", "-q", "-f", "qcow2", forged, String(16 * mib)])
            try await fx.runChecked(["qemu-io", "-f", "qcow2", "-c", "write -P 0x66 2M 64k", forged])
            try await fx.runChecked([
                "qemu-img", "rebase", "-u", "-f", "qcow2", "-b", "../\(full)/vda.qcow2", "-F", "qcow2", forged,
            ])
            try await fx.runChecked(["cp", forged, "\(folder)/vda.qcow2"])
            func sha256sum(_ command: String) async throws -> String {
                let sum = try await fx.runChecked(["sh", "-c", command + " | sha256sum"])
                return sum.stdout.split(separator: " ").first.map(String.init) ?? ""
            }
            let head = try await sha256sum("head -c 65536 '\(forged)'")
            let tail = try await sha256sum("tail -c +65537 '\(forged)'")
            try RepositoryEdits.editDisk(
                "\(folder)/manifest.json", 0, "imageDigest", "sha256-split:65536:\(head):\(tail)")
            let recorded = try #require(try Self.recordedDigests(guest, inc)["vda"])

            let plain = try await guest.pullback(["verify", "--repo", guest.repo, guest.name])
            try requireSuccess(plain)
            #expect(!plain.stdout.isEmpty && !plain.stdout.contains("DAMAGED"), "\(plain)")

            let content = try await guest.pullback(["verify", "--repo", guest.repo, guest.name, "--content"])
            let now = try await Self.digest(fx, "\(folder)/vda.qcow2")
            #expect(now != recorded)
            expectCleanFailure(content, mentioning: ["disk vda of point \(inc)", recorded, now])
            let lines = content.stdout.split(whereSeparator: \.isNewline)
            #expect(lines.contains("\(inc)  vda  CONTENT DIFFERS (recorded \(recorded), now \(now))"), "\(content)")
            #expect(lines.contains("\(inc)  vdb  content ok"), "\(content)")

            let json = try await guest.pullback(["verify", "--repo", guest.repo, guest.name, "--content", "--json"])
            #expect(json.exitCode == 1)
            let report = try JSONDecoder().decode(VerifyReport.self, from: Data(json.stdout.utf8))
            #expect(
                report.contents?.map { "\($0.point) \($0.target) \($0.status)" }
                    == ["\(inc) vda mismatch", "\(inc) vdb ok"], "\(json.stdout)")

            let everyDomain = try await guest.pullback(["verify", "--repo", guest.repo, "--content"])
            expectCleanFailure(everyDomain, mentioning: ["disk vda of point \(inc) of pbg", recorded, now])
            #expect(
                everyDomain.stdout.split(whereSeparator: \.isNewline).last
                    == "checked 1 point of 1 domain, 4 images, 2 disk contents: 1 not as recorded", "\(everyDomain)")
            let atFull = try await guest.pullback([
                "verify", "--repo", guest.repo, guest.name, "--at", full, "--content",
            ])
            try requireSuccess(atFull)

            let digest = try await guest.pullback(["digest", "--repo", guest.repo, guest.name, "--disk", "vda"])
            expectCleanFailure(digest, mentioning: ["point \(inc)", "disk vda", recorded, now])
            #expect(digest.stdout == "\(now)  pbg/\(inc)/vda  DIFFERS from the recorded \(recorded)\n", "\(digest)")
        }

        /// Missing files, unknown points, domains and disks, and a server nobody listens on: one line each.
        static func badInput(_ guest: LibvirtGuest, point: String) async throws {
            let fx = guest.fx
            let missing = fx.path("no-such.qcow2")
            expectCleanFailure(try await guest.pullback(["digest", missing]), mentioning: [missing])
            expectCleanFailure(
                try await guest.pullback(["digest", "--repo", guest.repo, guest.name, "--at", "20200101T000000Z"]),
                mentioning: ["20200101T000000Z"])
            expectCleanFailure(
                try await guest.pullback(["digest", "--repo", guest.repo, "nosuchdomain"]),
                mentioning: ["nosuchdomain"])
            expectCleanFailure(
                try await guest.pullback(["digest", "--repo", guest.repo, guest.name, "--disk", "vdz"]),
                mentioning: ["vdz", point])
            expectCleanFailure(
                try await guest.pullback(["digest", "--repo", fx.path("nowhere"), guest.name]),
                mentioning: [fx.path("nowhere")])
            let socket = fx.path("dead.sock")
            try FileFacts.makeDeadSocket(socket)
            expectCleanFailure(
                try await guest.pullback(["digest", "nbd+unix:///?socket=\(socket)"], timeout: .seconds(30)),
                mentioning: [socket])
        }

        @Test(
            "nbds:// with --tls-certificates or tls-certificates=: the digest of the served file; the option needs nbds://",
            .timeLimit(.minutes(1)))
        func overTLS() async throws {
            try await Fixture.run { fx in
                let image = fx.path("random.raw")
                try await fx.runChecked(["dd", "if=/dev/urandom", "of=\(image)", "bs=64k", "count=20", "status=none"])
                try await fx.runChecked(["truncate", "-s", "\(3 * mib + 512)", image])  // a hole and a short block
                let expected = try await Self.reference(fx, image)
                #expect(try await Self.digest(fx, image) == expected)
                let server = try await TLSServer.qemuNBD(fx, image: image)
                guard case .x509(let certificates) = server.credentials else { throw HarnessError("x509 expected") }
                #expect(try await Self.digest(fx, server.uri) == expected)
                let bare = "nbds://127.0.0.1:\(server.port)/"
                #expect(
                    try await Self.digest(fx, bare, ["--tls-certificates", certificates.clientDirectory]) == expected)
                let misplaced = try await Pullback.run(
                    fx, ["digest", server.plaintextURI, "--tls-certificates", certificates.clientDirectory])
                #expect(misplaced.exitCode == 64 && misplaced.stderr.contains("nbds://"), "\(misplaced)")
                expectCleanFailure(try await Pullback.run(fx, ["digest", server.plaintextURI]), mentioning: ["TLS"])
            }
        }

        @Test(
            "A repository of points without content digests backs up, restores and verifies; its next incremental has none, a later full has one",
            .timeLimit(.minutes(4)))
        func oldRepository() async throws {
            try await LibvirtGuest.run(disks: [("vda", 16 * mib)]) { fx, guest in
                try await guest.write("vda", "write -P 0x51 0 1M", "write -z 512k 64k")
                let (full, _) = try await BackupTests.backup(guest)
                let snap1 = try await guest.snapshot("1")
                try await guest.write("vda", "write -P 0x52 4M 64k")
                let (inc, _) = try await BackupTests.backup(guest)
                let snap2 = try await guest.snapshot("2")
                // As a build before content digests left them: no contentDigest, no blockHashes, no .blocks file, and
                // image digests in the split form (sha256sum of the header cluster and of the rest).
                func sha256sum(_ command: String) async throws -> String {
                    let sum = try await fx.runChecked(["sh", "-c", command + " | sha256sum"])
                    return sum.stdout.split(separator: " ").first.map(String.init) ?? ""
                }
                for point in [full.point, inc.point] {
                    let folder = "\(guest.repo)/\(guest.name)/\(point)"
                    #expect(FileFacts.exists("\(folder)/vda.blocks"))
                    try FileManager.default.removeItem(atPath: "\(folder)/vda.blocks")
                    let image = "'\(folder)/vda.qcow2'"
                    let split =
                        "sha256-split:65536:\(try await sha256sum("head -c 65536 \(image)")):\(try await sha256sum("tail -c +65537 \(image)"))"
                    try RepositoryEdits.editJSON("\(folder)/manifest.json") { object in
                        var disks = object["disks"] as? [[String: Any]] ?? []
                        for index in disks.indices {
                            disks[index]["contentDigest"] = nil
                            disks[index]["blockHashes"] = nil
                            disks[index]["imageDigest"] = split
                        }
                        object["disks"] = disks
                    }
                    #expect(try Self.recordedDigests(guest, point).isEmpty)
                }
                let list = try await guest.pullback(["list", "--repo", guest.repo, guest.name])
                try requireSuccess(list)
                #expect(list.stdout.contains(full.point) && list.stdout.contains(inc.point), "\(list)")
                try requireSuccess(
                    try await guest.pullback(["verify", "--repo", guest.repo, guest.name, "--at", "all"]))

                let verify = try await guest.pullback(["verify", "--repo", guest.repo, guest.name, "--content"])
                try requireSuccess(verify)
                let noDigest = "no content digest recorded (point made before content digests were kept)"
                #expect(verify.stdout.split(whereSeparator: \.isNewline).last == "\(inc.point)  vda  \(noDigest)")
                let listed = try await guest.pullback(["digest", "--repo", guest.repo, guest.name])
                try requireSuccess(listed)
                let expected2 = try await Self.reference(fx, try #require(snap2["vda"]))
                #expect(
                    listed.stdout
                        == "\(expected2)  pbg/\(inc.point)/vda  no digest recorded (point made before content digests were kept)\n",
                    "\(listed)")

                try await guest.write("vda", "write -P 0x53 8M 64k")
                let (inc2, _) = try await BackupTests.backup(guest)
                let snap3 = try await guest.snapshot("3")
                #expect(inc2.level == "incremental" && inc2.parent == inc.point, "\(inc2)")
                #expect(try Self.recordedDigests(guest, inc2.point).isEmpty, "no digest on a parent without one")
                try await BackupTests.expectRestores(guest, at: full.point, matching: snap1, label: "old-full")
                try await BackupTests.expectRestores(guest, at: inc2.point, matching: snap3, label: "old-inc2")
                try requireSuccess(
                    try await guest.pullback(["verify", "--repo", guest.repo, guest.name, "--at", "all"]))

                let (full2, _) = try await BackupTests.backup(guest, ["--level", "full"])
                let expected3 = try await Self.reference(fx, try #require(snap3["vda"]))
                #expect(try Self.recordedDigests(guest, full2.point) == ["vda": expected3])
                let after = try await guest.pullback(["verify", "--repo", guest.repo, guest.name, "--content"])
                try requireSuccess(after)
                #expect(after.stdout.contains("\(full2.point)  vda  content ok"), "\(after)")
            }
        }
    }
}
