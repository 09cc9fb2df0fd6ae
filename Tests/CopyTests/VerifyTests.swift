import Foundation
import Testing

extension CopyIntegration {
    /// `pullback verify` on a real chain of points: the recorded digests are what `sha256sum` says of each image (its
    /// header cluster and the rest), a damaged or missing image is found and named, and points that do not need it
    /// stay verifiable.
    @Suite("pullback verify (embedded libvirt)", .serialized)
    struct VerifyTests {
        struct Report: Decodable {
            struct Image: Decodable {
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

                // Recorded digests are those of the committed files, by an independent tool: sha256sum of the header
                // cluster and of the rest, hashed as the images were written, never read back.
                func sha256sum(_ command: String) async throws -> String {
                    let sum = try await fx.runChecked(["sh", "-c", command + " | sha256sum"])
                    return sum.stdout.split(separator: " ").first.map(String.init) ?? ""
                }
                for point in points {
                    let recorded = try Self.recordedDigests(folder(point))
                    #expect(recorded.keys.sorted() == ["vda", "vdb"], "\(point): \(recorded)")
                    for (target, digest) in recorded {
                        let image = "'\(folder(point))/\(target).qcow2'"
                        let head = try await sha256sum("head -c 65536 \(image)")
                        let tail = try await sha256sum("tail -c +65537 \(image)")
                        #expect(digest == "sha256-split:65536:\(head):\(tail)", "\(point)/\(target)")
                    }
                }

                let clean = try await guest.pullback(["verify", "--repo", guest.repo, guest.name, "--json"])
                try requireSuccess(clean)
                let report = try JSONDecoder().decode(Report.self, from: Data(clean.stdout.utf8))
                #expect(report.point == inc2.point)
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
    }
}
