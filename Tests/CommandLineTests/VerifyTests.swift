import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

extension CopyIntegration {
    /// `pullback verify` on a real chain of points: the recorded digests are what `sha256sum` says of each image (its
    /// header cluster and the rest), a damaged or missing image is found and named, and points that do not need it
    /// stay verifiable.
    @Suite("pullback verify (embedded libvirt)", .serialized)
    struct VerifyTests {
        struct Report: Decodable {
            struct Image: Decodable {
                let domain: String
                let point: String
                let target: String
                let path: String
                let status: String
            }

            let domain: String
            let point: String
            let images: [Image]
        }

        /// The `imageDigest` of every disk in a point's manifest.json, by target.
        static func recordedDigests(_ folder: String) throws -> [String: String] {
            let object = try JSONSerialization.jsonObject(with: try FileFacts.contents(folder + "/manifest.json"))
            let disks = (object as? [String: Any])?["disks"] as? [[String: Any]] ?? []
            var digests: [String: String] = [:]
            for disk in disks {
                if let target = disk["target"] as? String { digests[target] = disk["imageDigest"] as? String }
            }
            return digests
        }

        @Test(
            "Digests are sha256sum's of header and rest; a damaged or missing image fails verify, named; other points stay verifiable",
            .timeLimit(.minutes(3)))
        func verify() async throws {
            try await LibvirtGuest.run { fx, guest in
                try await guest.write("vda", "write -P 0x31 0 2M")
                try await guest.write("vdb", "write -P 0x32 1M 64k")
                let (full, _) = try await BackupTests.backup(guest)
                try await guest.write("vda", "write -P 0x33 4M 64k")
                let (inc1, _) = try await BackupTests.backup(guest)
                try await guest.write("vdb", "write -P 0x34 8M 64k")
                let (inc2, _) = try await BackupTests.backup(guest)
                let points = [full.point, inc1.point, inc2.point]
                let folder = { (point: String) in "\(guest.repo)/\(guest.name)/\(point)" }

                // Recorded digests are those of the committed files, by an independent computation (Python's hashlib):
                // of the header cluster and of the rest's 64 KiB pieces, hashed as the images were written, never read
                // back.
                for point in points {
                    let recorded = try Self.recordedDigests(folder(point))
                    #expect(recorded.keys.sorted() == ["vda", "vdb"], "\(point): \(recorded)")
                    for (target, digest) in recorded {
                        let expected = try await PiecewiseDigest.of("\(folder(point))/\(target).qcow2")
                        #expect(digest == expected, "\(point)/\(target)")
                    }
                }

                let clean = try await guest.pullback(["verify", "--repo", guest.repo, guest.name, "--json"])
                try requireSuccess(clean)
                let report = try JSONDecoder().decode(Report.self, from: Data(clean.stdout.utf8))
                #expect(report.point == inc2.point && report.images.allSatisfy { $0.domain == guest.name })
                #expect(
                    Set(report.images.map { "\($0.point)/\($0.target)" })
                        == Set(points.flatMap { ["\($0)/vda", "\($0)/vdb"] }), "\(clean.stdout)")
                #expect(report.images.allSatisfy { $0.status == "ok" }, "\(clean.stdout)")

                // One byte of inc1's vda image changed: the latest point and inc1 fail, naming it; full does not.
                let damaged = "\(folder(inc1.point))/vda.qcow2"
                let offset = UInt64(try FileFacts.size(damaged) / 2)
                let byte = try FileFacts.bytes(damaged, at: offset, count: 1)
                try FileFacts.overwrite(damaged, at: offset, with: Data([byte[0] ^ 0xff]))
                for at in ["latest", inc1.point] {
                    let result = try await guest.pullback(["verify", "--repo", guest.repo, guest.name, "--at", at])
                    expectCleanFailure(result, mentioning: [damaged, "1 of "])
                    let flagged = result.stdout.split(whereSeparator: \.isNewline).filter { $0.contains("DAMAGED") }
                    #expect(
                        flagged.count == 1 && flagged[0].hasPrefix("\(inc1.point)  vda  "), "\(result.stdout)")
                }
                let base = try await guest.pullback(["verify", "--repo", guest.repo, guest.name, "--at", full.point])
                try requireSuccess(base)
                #expect(base.stdout.split(whereSeparator: \.isNewline).count == 2, "\(base.stdout)")
                try FileFacts.overwrite(damaged, at: offset, with: byte)
                try requireSuccess(try await guest.pullback(["verify", "--repo", guest.repo, guest.name]))

                // A byte of the header cluster (past the header, where qemu never looks) is found too.
                let padding = try FileFacts.bytes(damaged, at: 60000, count: 1)
                try FileFacts.overwrite(damaged, at: 60000, with: Data([padding[0] ^ 0xff]))
                let header = try await guest.pullback(["verify", "--repo", guest.repo, guest.name])
                expectCleanFailure(header, mentioning: [damaged, "1 of "])
                try FileFacts.overwrite(damaged, at: 60000, with: padding)
                try requireSuccess(try await guest.pullback(["verify", "--repo", guest.repo, guest.name]))

                // A missing image, and a missing parent point.
                let moved = fx.path("vdb-moved.qcow2")
                try FileManager.default.moveItem(atPath: "\(folder(full.point))/vdb.qcow2", toPath: moved)
                let missing = try await guest.pullback(["verify", "--repo", guest.repo, guest.name])
                expectCleanFailure(missing, mentioning: ["\(folder(full.point))/vdb.qcow2"])
                #expect(missing.stdout.contains("\(full.point)  vdb  MISSING"), "\(missing.stdout)")
                try FileManager.default.moveItem(atPath: moved, toPath: "\(folder(full.point))/vdb.qcow2")

                try FileManager.default.moveItem(atPath: folder(inc1.point), toPath: fx.path("inc1-moved"))
                let orphan = try await guest.pullback(["verify", "--repo", guest.repo, guest.name])
                expectCleanFailure(orphan, mentioning: [inc1.point, "not in the repository"])
                #expect(orphan.stdout.isEmpty, "\(orphan)")

                let unknown = try await guest.pullback([
                    "verify", "--repo", guest.repo, guest.name, "--at", "20200101T000000Z",
                ])
                expectCleanFailure(unknown, mentioning: ["20200101T000000Z"])
            }
        }

        /// `verify --json` over many points.
        struct RepositoryReport: Decodable {
            struct Point: Decodable, Hashable {
                let domain: String
                let point: String
            }
            struct Problem: Decodable {
                let domain: String
                let point: String?
                let message: String
            }

            let scope: String
            let points: [Point]
            let images: [Report.Image]
            let problems: [Problem]
        }

        @Test(
            "verify --repo without a domain: each domain's latest chain, or --at all every point, each image once; every damaged or missing image is named",
            .timeLimit(.minutes(5)))
        func wholeRepository() async throws {
            try await LibvirtGuest.run { fx, guest in
                // A second domain, under an embedded root of its own, backs up into the same repository.
                try await LibvirtGuest.run(name: "pbh", disks: [("vda", 16 * mib)]) { _, other in
                    let repo = guest.repo
                    try await guest.write("vda", "write -P 0x51 0 1M")
                    try await guest.write("vdb", "write -P 0x52 0 64k")
                    let (full1, _) = try await BackupTests.backup(guest)
                    try await guest.write("vda", "write -P 0x53 2M 64k")
                    let (inc1, _) = try await BackupTests.backup(guest)
                    let (full2, _) = try await BackupTests.backup(guest, ["--level", "full"])
                    try await guest.write("vdb", "write -P 0x54 1M 64k")
                    let (inc2, _) = try await BackupTests.backup(guest)
                    try await other.write("vda", "write -P 0x61 0 64k")
                    let otherResult1 = try await other.backup(repo: repo)
                    try requireSuccess(otherResult1)
                    let other1 = try BackupSummary.decode(otherResult1)
                    try await other.write("vda", "write -P 0x62 64k 64k")
                    let otherResult2 = try await other.backup(repo: repo)
                    try requireSuccess(otherResult2)
                    let other2 = try BackupSummary.decode(otherResult2)
                    #expect([full2.level, inc2.level, other2.level] == ["full", "incremental", "incremental"])
                    let folder = { (domain: String, point: String) in "\(repo)/\(domain)/\(point)" }
                    func verify(_ arguments: [String]) async throws -> CommandResult {
                        try await guest.pullback(["verify", "--repo", repo] + arguments)
                    }
                    func lines(_ result: CommandResult) -> [String] {
                        result.stdout.split(whereSeparator: \.isNewline).map(String.init)
                    }
                    func imageLines(_ result: CommandResult) -> Set<String> {
                        Set(lines(result).filter { !$0.hasPrefix("checked ") })
                    }
                    func ok(_ domain: String, _ point: String, _ targets: [String]) -> [String] {
                        targets.map { "\(domain)  \(point)  \($0)  ok" }
                    }

                    // Every point, each image read once: 4 points of 2 disks and 2 points of 1 disk.
                    let all = try await verify(["--at", "all", "--json"])
                    try requireSuccess(all)
                    let report = try JSONDecoder().decode(RepositoryReport.self, from: Data(all.stdout.utf8))
                    #expect(report.scope == "all" && report.problems.isEmpty, "\(all.stdout)")
                    #expect(
                        report.points
                            == [inc2.point, full2.point, inc1.point, full1.point].map {
                                RepositoryReport.Point(domain: "pbg", point: $0)
                            } + [other2.point, other1.point].map { RepositoryReport.Point(domain: "pbh", point: $0) },
                        "\(all.stdout)")
                    #expect(report.images.count == 10, "\(all.stdout)")
                    #expect(Set(report.images.map(\.path)).count == 10, "each image once: \(all.stdout)")
                    #expect(report.images.allSatisfy { $0.status == "ok" }, "\(all.stdout)")

                    // By default each domain's latest point and its chain: inc2 over full2, and other2 over other1.
                    let latest = try await verify([])
                    try requireSuccess(latest)
                    let latestLines = Set(
                        ok("pbg", inc2.point, ["vda", "vdb"]) + ok("pbg", full2.point, ["vda", "vdb"])
                            + ok("pbh", other2.point, ["vda"]) + ok("pbh", other1.point, ["vda"]))
                    #expect(imageLines(latest) == latestLines, "\(latest.stdout)")
                    #expect(lines(latest).last == "checked 2 points of 2 domains, 6 images: all as committed")

                    // One byte of inc1's vda changed, and full1's vdb gone: points no later point is based on.
                    let damaged = folder("pbg", inc1.point) + "/vda.qcow2"
                    let offset = UInt64(try FileFacts.size(damaged) / 2)
                    let byte = try FileFacts.bytes(damaged, at: offset, count: 1)
                    try FileFacts.overwrite(damaged, at: offset, with: Data([byte[0] ^ 0xff]))
                    let gone = folder("pbg", full1.point) + "/vdb.qcow2"
                    let moved = fx.path("vdb-moved.qcow2")
                    try FileManager.default.moveItem(atPath: gone, toPath: moved)

                    // --at all names both, on one error line, and lists every image with its status.
                    let allDamaged = try await verify(["--at", "all"])
                    expectCleanFailure(allDamaged, mentioning: [damaged, gone, "2 of 10 images"])
                    let flagged = lines(allDamaged).filter { !$0.hasSuffix("  ok") && !$0.hasPrefix("checked ") }
                    #expect(flagged.count == 2, "\(allDamaged.stdout)")
                    #expect(
                        flagged.contains { $0.hasPrefix("pbg  \(inc1.point)  vda  DAMAGED (recorded sha256-pieces:") },
                        "\(allDamaged.stdout)")
                    #expect(flagged.contains("pbg  \(full1.point)  vdb  MISSING"), "\(allDamaged.stdout)")
                    #expect(lines(allDamaged).count == 11, "\(allDamaged.stdout)")
                    let allJSON = try await verify(["--at", "all", "--json"])
                    #expect(allJSON.exitCode == 1, "\(allJSON)")
                    let failed = try JSONDecoder().decode(RepositoryReport.self, from: Data(allJSON.stdout.utf8))
                    #expect(
                        Set(failed.images.filter { $0.status != "ok" }.map { "\($0.path) \($0.status)" })
                            == ["\(damaged) mismatch", "\(gone) missing"], "\(allJSON.stdout)")

                    // The latest points do not need them: verify passes, reading neither.
                    let latestClean = try await verify([])
                    try requireSuccess(latestClean)
                    #expect(imageLines(latestClean) == latestLines, "\(latestClean.stdout)")
                    // One domain: its lines carry no domain; the other domain is not read.
                    let pbgAll = try await verify(["pbg", "--at", "all"])
                    expectCleanFailure(pbgAll, mentioning: [damaged, gone, "2 of 8 images"])
                    #expect(lines(pbgAll).contains("\(full1.point)  vdb  MISSING"), "\(pbgAll.stdout)")
                    #expect(!pbgAll.stdout.contains("pbh"), "\(pbgAll.stdout)")
                    try requireSuccess(try await verify(["pbh", "--at", "all"]))
                    try requireSuccess(try await verify(["pbg", "--at", full2.point]))

                    // full2 is an old point, but inc2 is based on it: damage there fails the latest verify too.
                    let base = folder("pbg", full2.point) + "/vdb.qcow2"
                    let baseOffset = UInt64(try FileFacts.size(base) / 2)
                    let baseByte = try FileFacts.bytes(base, at: baseOffset, count: 1)
                    try FileFacts.overwrite(base, at: baseOffset, with: Data([baseByte[0] ^ 0x01]))
                    let latestDamaged = try await verify([])
                    expectCleanFailure(latestDamaged, mentioning: [base, "1 of 6 images"])
                    #expect(!latestDamaged.stderr.contains(damaged) && !latestDamaged.stderr.contains(gone))
                    let allThree = try await verify(["--at", "all"])
                    expectCleanFailure(allThree, mentioning: [damaged, gone, base, "3 of 10 images"])
                    try FileFacts.overwrite(base, at: baseOffset, with: baseByte)
                    try FileFacts.overwrite(damaged, at: offset, with: byte)
                    try FileManager.default.moveItem(atPath: moved, toPath: gone)
                    try requireSuccess(try await verify(["--at", "all"]))

                    // A FIFO by an image's name is not read (nor waited on), and the other images still are.
                    let fifoImage = folder("pbh", other1.point) + "/vda.qcow2"
                    let fifoSaved = fx.path("other1-vda.qcow2")
                    try FileManager.default.moveItem(atPath: fifoImage, toPath: fifoSaved)
                    #expect(mkfifo(fifoImage, 0o600) == 0)
                    try FileFacts.overwrite(damaged, at: offset, with: Data([byte[0] ^ 0xff]))
                    let fifo = try await guest.pullback(
                        ["verify", "--repo", repo, "--at", "all"], timeout: .seconds(60))
                    expectCleanFailure(fifo, mentioning: [damaged, fifoImage, "2 of 10 images"])
                    #expect(
                        lines(fifo).contains { $0.hasPrefix("pbh  \(other1.point)  vda  UNREADABLE (") },
                        "\(fifo.stdout)")
                    #expect(lines(fifo).filter { $0.hasSuffix("  ok") }.count == 8, "\(fifo.stdout)")
                    try FileManager.default.removeItem(atPath: fifoImage)
                    try FileManager.default.moveItem(atPath: fifoSaved, toPath: fifoImage)
                    try FileFacts.overwrite(damaged, at: offset, with: byte)

                    // A point whose parent is gone cannot be checked, and says so; every other point still is.
                    let parked = fx.path("full2-moved")
                    try FileManager.default.moveItem(atPath: folder("pbg", full2.point), toPath: parked)
                    let orphan = try await verify(["--at", "all"])
                    expectCleanFailure(orphan, mentioning: [inc2.point, "not in the repository", "cannot be checked"])
                    #expect(
                        lines(orphan).contains { $0.hasPrefix("pbg  \(inc2.point)  CANNOT BE CHECKED: ") },
                        "\(orphan.stdout)")
                    #expect(
                        lines(orphan).filter { $0.hasSuffix("  ok") }.count == 6,
                        "inc1, full1 and pbh's two points: \(orphan.stdout)")
                    try FileManager.default.moveItem(atPath: parked, toPath: folder("pbg", full2.point))

                    // A domain whose manifest is damaged is named; the other domain is still checked.
                    let manifest = folder("pbh", other2.point) + "/manifest.json"
                    let saved = try FileFacts.contents(manifest)
                    try FileFacts.overwrite(manifest, at: 0, with: Data("{\"schemaVersion\": 99,".utf8))
                    let corrupt = try await verify([])
                    expectCleanFailure(corrupt, mentioning: [manifest, "cannot be checked"])
                    #expect(
                        imageLines(corrupt).isSuperset(of: ok("pbg", inc2.point, ["vda", "vdb"])), "\(corrupt.stdout)")
                    try FileManager.default.removeItem(atPath: manifest)
                    try FileFacts.create(manifest, with: saved)

                    // Untrusted names: a folder that is not a valid domain name is not read; --at ID needs a domain.
                    try FileManager.default.createDirectory(
                        atPath: repo + "/bad name", withIntermediateDirectories: false)
                    try requireSuccess(try await verify([]))
                    let noDomain = try await verify(["--at", inc2.point])
                    #expect(noDomain.exitCode != 0 && noDomain.stderr.contains("DOMAIN"), "\(noDomain)")
                    let badDomain = try await verify(["../pbg", "--at", "all"])
                    expectCleanFailure(badDomain, mentioning: ["../pbg"])
                    let notRepo = try await guest.pullback(["verify", "--repo", fx.path("nowhere")])
                    expectCleanFailure(notRepo, mentioning: ["not a Pullback repository"])
                }
            }
        }
    }
}
