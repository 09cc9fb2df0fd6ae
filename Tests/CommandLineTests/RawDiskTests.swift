import Foundation
import Testing

extension CopyIntegration {
    /// A VM with a qcow2 disk and a raw one: `--raw-disks full` copies the raw disk whole into every point, and each
    /// point restores, verifies and serves both disks as the guest had them; without it the raw disk is skipped, as
    /// before.
    @Suite("Raw disks: backup --raw-disks full|skip (embedded libvirt)", .serialized)
    struct RawDiskTests {
        /// The `backingImage` of each disk in a point's manifest.json, by target (nil for a standalone image).
        static func backingImages(_ folder: String) throws -> [String: String?] {
            let object = try JSONSerialization.jsonObject(with: try FileFacts.contents(folder + "/manifest.json"))
            let disks = (object as? [String: Any])?["disks"] as? [[String: Any]] ?? []
            var backing: [String: String?] = [:]
            for disk in disks {
                if let target = disk["target"] as? String {
                    backing.updateValue(disk["backingImage"] as? String, forKey: target)
                }
            }
            return backing
        }

        @Test(
            "--raw-disks full: full and two incrementals with writes to both disks; every point restores both byte for byte, verifies and serves the raw disk",
            .timeLimit(.minutes(4)))
        func rawDiskInEveryPoint() async throws {
            try await LibvirtGuest.run(rawDisks: ["vdb"]) { fx, guest in
                let raw = ["--raw-disks", "full"]
                try await guest.write("vda", "write -P 0x41 0 2M")
                try await guest.write("vdb", "write -P 0x42 1M 1M", "write -P 0x43 30M 64k")
                let (full, _) = try await BackupTests.backup(guest, raw)
                let first = try await guest.snapshot("full")
                try await guest.write("vda", "write -P 0x44 4M 64k")
                try await guest.write("vdb", "write -P 0x45 8M 64k", "write -z 1M 64k", "write -P 0x46 65535 3")
                let (inc1, _) = try await BackupTests.backup(guest, raw)
                let second = try await guest.snapshot("inc1")
                try await guest.write("vda", "write -z 0 64k")
                try await guest.write("vdb", "write -P 0x47 16M 128k", "write -z 30M 64k")
                let (inc2, _) = try await BackupTests.backup(guest, raw)
                let third = try await guest.snapshot("inc2")

                #expect([full.level, inc1.level, inc2.level] == ["full", "incremental", "incremental"])
                for summary in [full, inc1, inc2] {
                    #expect(summary.skipped.isEmpty, "\(summary)")
                    #expect(summary.disk("vdb")?.mode == "full", "\(summary)")
                    // The raw disk is read whole each time: its data, not only what changed.
                    #expect((summary.disk("vdb")?.bytesRead ?? 0) >= 1024 * 1024, "\(summary)")
                }
                #expect(inc1.disk("vda")?.mode == "incremental" && inc2.disk("vda")?.mode == "incremental")
                #expect((inc1.disk("vda")?.bytesRead ?? .max) <= 128 * 1024, "\(inc1)")

                let folder = { (point: String) in "\(guest.repo)/\(guest.name)/\(point)" }
                for (point, parent) in [(full.point, nil), (inc1.point, full.point), (inc2.point, inc1.point)] {
                    let backing = try Self.backingImages(folder(point))
                    #expect(backing["vdb"] == .some(nil), "\(point): the raw disk's image is standalone: \(backing)")
                    #expect(backing["vda"] == .some(parent.map { "../\($0)/vda.qcow2" }), "\(point): \(backing)")
                    let chain = try await Qemu.chain(folder(point) + "/vdb.qcow2", using: fx)
                    #expect(chain.count == 1 && chain.first?.backingFilename == nil, "\(point): \(chain)")
                    // libvirt keeps no bitmap for the raw disk: the checkpoint leaves it out.
                    let checkpoint = try String(contentsOfFile: folder(point) + "/checkpoint.xml", encoding: .utf8)
                    #expect(checkpoint.contains("<disk name='vdb' checkpoint='no'"), "\(checkpoint)")
                    #expect(checkpoint.contains("<disk name='vda' checkpoint='bitmap'"), "\(checkpoint)")
                }

                try await BackupTests.expectRestores(guest, at: full.point, matching: first, label: "full")
                try await BackupTests.expectRestores(guest, at: inc1.point, matching: second, label: "inc1")
                try await BackupTests.expectRestores(guest, at: inc2.point, matching: third, label: "inc2")

                let verified = try await guest.pullback(["verify", "--repo", guest.repo, guest.name, "--at", "all"])
                try requireSuccess(verified)
                #expect(
                    verified.stdout.split(whereSeparator: \.isNewline).filter { $0.hasSuffix("  ok") }.count == 6,
                    "\(verified.stdout)")

                // serve --repo exports the raw disk of each point with its bytes at that point; a replica pulled
                // point by point as the README shows (an incremental's dirty clusters over the replica's previous
                // image) reads as the guest had it too, although the raw disk's image is standalone.
                var replicaParent: String?
                for (point, snapshot) in [(full.point, first), (inc1.point, second), (inc2.point, third)] {
                    let socket = fx.path("\(point).sock")
                    let server = try await ServeTests.start(
                        fx, ["--repo", guest.repo, guest.name, "--at", point, "--socket", socket], exports: 2
                    ).server
                    let uri = "nbd+unix:///vdb?socket=\(socket)"
                    let reference = try #require(snapshot["vdb"])
                    let served = fx.target("served-\(point)-vdb.raw")
                    try await fx.runChecked(["nbdcopy", uri, served])
                    try await expectSameBytes(fx, served, reference)
                    if point != full.point {
                        // Nothing says what changed on a raw disk: the whole disk is marked.
                        let dirty = ServeTests.merge(
                            try await NBDInfo.dirtyRanges(uri, bitmap: "backup-vdb", using: fx))
                        #expect(dirty == [0..<Int64(32 * mib)], "\(point): \(dirty)")
                    }
                    let replica = fx.target("replica-\(point)-vdb.qcow2")
                    var arguments = [uri, replica, "--format", "qcow2"]
                    if let replicaParent { arguments += ["--bitmap", "backup-vdb", "--backing", replicaParent] }
                    try requireSuccess(try await Pullback.copy(fx, arguments))
                    try await Qemu.expectIdentical(fx, replica, reference)
                    replicaParent = replica
                    server.interrupt()
                    #expect(try await server.waitForExit(timeout: .seconds(20)).succeeded)
                }
            }
        }

        @Test(
            "Without --raw-disks the raw disk is left out with a warning and exit 3, with skip on purpose with a note; the qcow2 disk is backed up",
            .timeLimit(.minutes(3)))
        func rawDiskSkipped() async throws {
            try await LibvirtGuest.run(rawDisks: ["vdb"]) { fx, guest in
                try await guest.write("vda", "write -P 0x51 0 1M")
                try await guest.write("vdb", "write -P 0x52 0 1M")
                let unsaid = "its format is raw, and only qcow2 disks keep the bitmaps incremental backups need"
                let cases = [
                    ([String](), 3 as Int32, unsaid, "vdb is not in this backup: \(unsaid); --raw-disks full"),
                    (
                        ["--raw-disks", "skip"], 0, "its format is raw, and --raw-disks skip leaves raw disks out",
                        "skipping vdb: its format is raw, and --raw-disks skip leaves raw disks out"
                    ),
                ]
                for (extra, status, reason, line) in cases {
                    let result = try await guest.backup(extra)
                    #expect(result.exitCode == status && result.signal == nil, "\(result)")
                    let summary = try BackupSummary.decode(result)
                    #expect(summary.disks.map(\.target) == ["vda"], "\(summary)")
                    #expect(summary.skipped.map(\.target) == ["vdb"] && summary.skipped.first?.reason == reason)
                    #expect(result.stderr.contains(line), "\(result)")
                    let restored = fx.target("restored-\(summary.point)")
                    try requireSuccess(
                        try await guest.pullback([
                            "restore", "--repo", guest.repo, guest.name, "--at", summary.point, "--to", restored,
                            "--format", "raw",
                        ]))
                    #expect(try FileFacts.listing(restored) == ["vda.raw"])
                    try await expectSameBytes(fx, restored + "/vda.raw", guest.reference("vda"))
                }
                let bad = try await guest.backup(["--raw-disks", "some"])
                #expect(bad.exitCode != 0 && bad.stderr.contains("--raw-disks"), "\(bad)")
            }
        }
    }
}
