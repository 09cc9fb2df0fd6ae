import Engine
import Foundation
import QCOW2
import TestSupport
import Testing

/// Copies described by a ``CopyDescription`` and run by ``Copy/run(_:progress:)``: what the summary gives back, and
/// the rules `pullback copy` turns its options into a description by. Images are made and judged by qemu-img.
@Suite(.timeLimit(.minutes(2)))
struct CopyDescriptionTests {
    /// A two-image chain of 12 MiB and a bit: data in the base, zeros and data written over it in the top.
    func makeChain(in directory: TemporaryDirectory) async throws -> (base: String, top: String) {
        let (base, top) = (directory.file("base.qcow2"), directory.file("top.qcow2"))
        try await runTool(["qemu-img", "create", "-q", "-f", "qcow2", base, "12583424"])
        try await runTool(["qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 3M", "-c", "write -P 0x22 8M 100k", base])
        try await runTool(["qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top])
        try await runTool(["qemu-io", "-f", "qcow2", "-c", "write -z 1M 1M", "-c", "write -P 0x33 10M 64k", top])
        return (base, top)
    }

    @Test("exactly a repository's chain into a digested qcow2 image with block hashes: one summary gives both")
    func chainIntoDigestedHashedImage() async throws {
        let directory = try TemporaryDirectory("pbdescribed")
        defer { directory.remove() }
        let (base, top) = try await makeChain(in: directory)
        let layers = [
            QCOW2Chain.ExpectedLayer(path: top, backingName: "base.qcow2"),
            QCOW2Chain.ExpectedLayer(path: base, backingName: nil),
        ]
        let image = directory.file("merged.qcow2")
        let copy = CopyDescription(
            from: .chain(layers), to: CopyTarget.qcow2(image).digested().hashingBlocks(over: nil),
            transfer: .chainReading)
        let summary = try await Copy.run(copy)

        let compare = try await runTool(["qemu-img", "compare", "-f", "qcow2", image, "-F", "qcow2", top])
        #expect(compare.contains("Images are identical"))
        #expect(summary.mode == .full && summary.format == .qcow2 && summary.exportSize == 12_583_424)
        #expect(summary.bytesReadFromExport == summary.bytesRead && summary.retries == 0)
        #expect(summary.blockHashes?.digest == (try await ContentDigest.ofImage(path: top)))
        let digest = try #require(summary.imageDigest, "the image is hashed as it is written")
        let head = try await runTool(["sh", "-c", "head -c \(digest.headLength) \"$0\" | sha256sum", image])
        #expect(head.hasPrefix(digest.head.map { String(format: "%02x", $0) }.joined()), "\(head)")
    }

    @Test("a copy that asks for nothing more gives no digest and no block hashes")
    func plainCopyGivesNoHashes() async throws {
        let directory = try TemporaryDirectory("pbdescribed")
        defer { directory.remove() }
        let (_, top) = try await makeChain(in: directory)
        let summary = try await Copy.run(
            CopyDescription(from: .image(path: top), to: .raw(directory.file("copy.raw")), transfer: .chainReading))
        #expect(summary.imageDigest == nil && summary.blockHashes == nil)
        // Data only: 2 MiB of the base's first 3 (the top zeroes one), its 100 KiB (two clusters) and the top's 64 KiB.
        #expect(summary.format == .raw && summary.bytesWritten == (2 << 20) + (192 << 10))
    }

    @Test("pullback copy's options: what each makes, and what is refused before anything is opened")
    func requestRules() throws {
        let directory = try TemporaryDirectory("pbdescribed")
        defer { directory.remove() }
        let existing = directory.file("existing.img")
        FileManager.default.createFile(atPath: existing, contents: Data())
        func refusal(_ request: CopyRequest) -> String? {
            do throws(CopyError) {
                _ = try CopyDescription(request)
                return nil
            } catch {
                return error.code == .targetMismatch ? error.message : "\(error.code): \(error.message)"
            }
        }
        let uri = "nbd+unix:///disk?socket=/nowhere"
        var raw = CopyRequest(sourceURI: uri, targetPath: existing)
        #expect(
            refusal(raw)
                == "\(existing) exists; pass --overwrite to replace it with a full copy, or --bitmap NAME to update it")
        raw.bitmap = "b1"
        let update = try CopyDescription(raw)
        #expect(update.target.mode == .incremental && update.target.format == .raw)
        guard case .rawUpdate(let described) = update.target.layout else {
            Issue.record("an existing raw target with a bitmap is updated in place: \(update.target.layout)")
            return
        }
        #expect(described == "incremental update from \(uri) bitmap b1")
        raw.backingPath = existing
        #expect(refusal(raw) == "--backing needs --format qcow2; a raw target is updated in place instead")

        var qcow2 = CopyRequest(sourceURI: uri, targetPath: directory.file("new.qcow2"), format: .qcow2)
        qcow2.bitmap = "b1"
        #expect(refusal(qcow2) == "an incremental qcow2 copy needs --backing PARENT, the previous point's image")
        (qcow2.bitmap, qcow2.backingPath) = (nil, existing)
        #expect(
            refusal(qcow2) == "--backing needs --bitmap NAME: an overlay holds only what the bitmap marks as changed")
        qcow2.bitmap = "b1"
        #expect(try CopyDescription(qcow2).target.mode == .incremental)
        qcow2.targetPath = existing
        #expect(
            refusal(qcow2)
                == "\(existing) exists; a qcow2 copy always makes a new image: choose a new name or pass --overwrite")
        qcow2.targetPath = directory.path
        #expect(refusal(qcow2) == "\(directory.path) is a directory; give the path of an image file")
    }
}
