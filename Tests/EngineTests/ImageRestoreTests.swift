import Engine
import Foundation
import TestSupport
import Testing

/// Restoring a chain into a standalone image, with qemu-img making the chain and judging the result.
@Suite(.timeLimit(.minutes(2)))
struct ImageRestoreTests {
    @Test(arguments: [TargetFormat.raw, .qcow2])
    func restoresAChainWithZerosOverBackingData(_ format: TargetFormat) async throws {
        let directory = try TemporaryDirectory("pbrestore")
        defer { directory.remove() }
        let dir = directory.path
        let base = dir + "/base.qcow2"
        let top = dir + "/top.qcow2"
        try await runTool(["qemu-img", "create", "-q", "-f", "qcow2", base, "20000256"])
        try await runTool(["qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 4M", "-c", "write -P 0x22 18M 100k", base])
        try await runTool(["qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top])
        try await runTool([
            "qemu-io", "-f", "qcow2", "-c", "write -z 1M 1M", "-c", "write -P 0x33 3M 3", "-c", "write -P 0x44 10M 64k",
            top,
        ])

        let target = dir + "/restored." + format.rawValue
        let summary = try await Copy.run(CopyDescription(from: .image(path: top), to: .new(target, format: format)))
        #expect(summary.exportSize == 20_000_256)
        #expect(summary.bytesRead < 6 << 20, "only data is read: \(summary)")
        let compare = try await runTool(["qemu-img", "compare", "-f", format.rawValue, target, "-F", "qcow2", top])
        #expect(compare.contains("Images are identical"))
        if format == .qcow2 {
            let info = try await runTool(["qemu-img", "info", target])
            #expect(!info.contains("backing file"), "a restored image stands alone: \(info)")
            try await runTool(["qemu-img", "check", "-q", target])
        }
        #expect(try FileFacts.allocated(target) < 8 << 20, "the restored image is sparse")
    }
}
