import Foundation
import Testing

extension CopyIntegration {
    /// A point's block hashes (`<target>.blocks`) damaged: found by `verify --content`, and the next backup carries on
    /// without a content digest for the disk rather than recording a wrong one.
    @Suite("damaged block hashes (embedded libvirt)", .serialized)
    struct BlockHashesDamageTests {
        @Test(
            "garbage in a point's vda.blocks: verify --content fails naming it; the next incremental has no digest for vda and restores identical",
            .timeLimit(.minutes(3)))
        func damagedBlockHashes() async throws {
            try await LibvirtGuest.run(disks: [("vda", 16 * mib)]) { _, guest in
                try await guest.write("vda", "write -P 0x71 0 1M")
                let (full, _) = try await BackupTests.backup(guest)
                let blocks = "\(guest.repo)/\(guest.name)/\(full.point)/vda.blocks"
                let size = try FileFacts.size(blocks)
                try FileFacts.overwrite(blocks, at: 40, with: Data(repeating: 0xee, count: 64))
                #expect(try FileFacts.size(blocks) == size)

                let verify = try await guest.pullback(["verify", "--repo", guest.repo, guest.name, "--content"])
                expectCleanFailure(verify, mentioning: ["vda"])
                #expect(verify.stdout.contains("vda.blocks"), "\(verify)")

                try await guest.write("vda", "write -P 0x72 2M 64k")
                let (inc, result) = try await BackupTests.backup(guest)
                #expect(inc.level == "incremental", "\(inc)")
                #expect(result.stderr.contains("block hashes of point \(full.point)"), "\(result.stderr)")
                let digests = try ContentDigestCommandTests.recordedDigests(guest, inc.point)
                #expect(digests["vda"] == nil, "no digest rather than one built on damaged hashes: \(digests)")
                let snapshot = try await guest.snapshot("inc")
                try await BackupTests.expectRestores(guest, at: inc.point, matching: snapshot, label: "inc")
            }
        }
    }
}
