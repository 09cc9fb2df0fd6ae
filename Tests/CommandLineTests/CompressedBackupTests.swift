import Foundation
import Testing

extension BackupIntegration {
    /// `backup --compress`: points whose images store compressed clusters that qemu reads, kept by the next points
    /// and by prune's synthetic full, restored byte for byte; `restore --compress` writes a compressed image.
    @Suite("pullback backup --compress (embedded libvirt)", .serialized)
    struct CompressedBackupTests {
        /// The share of compressed clusters `qemu-img check` reports for `image` (which must check clean).
        static func compressedShare(_ fx: Fixture, _ image: String, sourceLocation: SourceLocation = #_sourceLocation)
            async throws -> Double
        {
            try await Qemu.expectCheckClean(fx, image, sourceLocation: sourceLocation)
            let check = try await fx.run(["qemu-img", "check", "-f", "qcow2", image])
            let words = check.stdout.split(whereSeparator: \.isWhitespace)
            guard let index = words.firstIndex(of: "compressed"), index > 0 else { return 0 }
            return Double(words[index - 1].dropLast()) ?? 0
        }

        /// The compression type `qemu-img info` names for `image`, nil when it names none.
        static func compressionType(_ fx: Fixture, _ image: String) async throws -> String? {
            let info = try await fx.run(["qemu-img", "info", "-U", image])
            let line = info.stdout.split(separator: "\n").first { $0.contains("compression type:") }
            return line.map { $0.split(separator: ":").last!.trimmingCharacters(in: .whitespaces) }
        }

        @Test(
            "zstd full, an incremental keeping it, a deflate one, prune's synthetic full keeping deflate, then none: qemu-img checks each, list shows it, every point restores identical; restore --format qcow2 --compress zstd",
            .timeLimit(.minutes(5)))
        func compressedChain() async throws {
            try await LibvirtGuest.run { fx, guest in
                let noise = fx.path("noise")
                try Data((0..<(2 << 20)).map { _ in UInt8.random(in: 0...255) }).write(to: URL(fileURLWithPath: noise))
                try await guest.write("vda", "write -P 0x5a 0 4M", "write -s \(noise) 8M 2M")
                try await guest.write("vdb", "write -P 0x22 0 1M")
                let (full, _) = try await BackupTests.backup(guest, ["--compress", "zstd"])
                var snapshots = [full.point: try await guest.snapshot("full")]
                try await guest.write("vda", "write -P 0x6b 1M 1M", "write -z 8M 64k")
                let (kept, _) = try await BackupTests.backup(guest)
                snapshots[kept.point] = try await guest.snapshot("kept")
                try await guest.write("vda", "write -P 0x7c 2M 512k")
                try await guest.write("vdb", "write -P 0x33 4M 1M")
                let (deflated, _) = try await BackupTests.backup(guest, ["--compress", "deflate:1"])
                snapshots[deflated.point] = try await guest.snapshot("deflated")

                let listed = try await guest.list()
                #expect(listed.map(\.compression) == ["zstd:3", "zstd:3", "deflate:1"], "\(listed)")
                let folder = "\(guest.repo)/\(guest.name)"
                for point in [full.point, kept.point] {
                    let image = "\(folder)/\(point)/vda.qcow2"
                    #expect(try await Self.compressionType(fx, image) == "zstd", "\(image)")
                    #expect(try await Self.compressedShare(fx, image) > 0, "\(image) has no compressed cluster")
                }
                let deflatedImage = "\(folder)/\(deflated.point)/vda.qcow2"
                #expect(try await Self.compressionType(fx, deflatedImage) == "zlib")
                #expect(try await Self.compressedShare(fx, deflatedImage) > 0)
                try await PruneTests.expectEveryPointRestores(
                    guest, repo: guest.repo, snapshots: snapshots, label: "compressed")

                // prune's synthetic full of the newest point keeps its deflate clusters.
                try requireSuccess(try await PruneTests.prune(guest, ["--keep", "1"]))
                #expect(try await guest.list().map(\.compression) == ["deflate:1"])
                #expect(try await Self.compressedShare(fx, deflatedImage) > 0)
                #expect(try await Qemu.chain(deflatedImage, using: fx).count == 1, "not a standalone image")

                // --compress none: the next point stores its clusters as they are.
                try await guest.write("vda", "write -P 0x11 16M 1M")
                let (plain, _) = try await BackupTests.backup(guest, ["--compress", "none"])
                snapshots[plain.point] = try await guest.snapshot("plain")
                #expect(try await guest.list().map(\.compression) == ["deflate:1", nil])
                #expect(try await Self.compressedShare(fx, "\(folder)/\(plain.point)/vda.qcow2") == 0)
                try await PruneTests.expectEveryPointRestores(
                    guest, repo: guest.repo, snapshots: snapshots, label: "after-prune")

                // restore --format qcow2 --compress zstd: an image qemu reads as the guest's disk.
                let out = fx.path("zstd-restore")
                try requireSuccess(
                    try await guest.pullback([
                        "restore", "--repo", guest.repo, guest.name, "--to", out, "--compress", "zstd:19",
                    ]))
                #expect(try await Self.compressionType(fx, out + "/vda.qcow2") == "zstd")
                #expect(try await Self.compressedShare(fx, out + "/vda.qcow2") > 0)
                try await Qemu.expectIdentical(fx, out + "/vda.qcow2", snapshots[plain.point]?["vda"] ?? "")
                let raw = try await guest.pullback([
                    "restore", "--repo", guest.repo, guest.name, "--to", fx.path("raw"), "--format", "raw",
                    "--compress", "zstd",
                ])
                expectCleanFailure(raw, exitCode: 64, mentioning: ["--compress needs --format qcow2"])
            }
        }
    }
}
