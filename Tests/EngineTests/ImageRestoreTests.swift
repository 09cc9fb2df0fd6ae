import Engine
import Foundation
import Testing

/// Restoring a chain into a standalone image, with qemu-img making the chain and judging the result.
@Suite(.timeLimit(.minutes(2)))
struct ImageRestoreTests {
    @discardableResult
    func qemu(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/" + arguments[0])
        process.arguments = Array(arguments.dropFirst())
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw RestoreTestError(message: "\(arguments.joined(separator: " ")): \(text)")
        }
        return text
    }

    struct RestoreTestError: Error { var message: String }

    @Test(arguments: [TargetFormat.raw, .qcow2])
    func restoresAChainWithZerosOverBackingData(_ format: TargetFormat) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "pbrestore-\(UUID().uuidString.prefix(8))"
        ).path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let base = dir + "/base.qcow2"
        let top = dir + "/top.qcow2"
        try qemu(["qemu-img", "create", "-q", "-f", "qcow2", base, "20000256"])
        try qemu(["qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 4M", "-c", "write -P 0x22 18M 100k", base])
        try qemu(["qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top])
        try qemu([
            "qemu-io", "-f", "qcow2", "-c", "write -z 1M 1M", "-c", "write -P 0x33 3M 3", "-c", "write -P 0x44 10M 64k",
            top,
        ])

        let target = dir + "/restored." + format.rawValue
        let summary = try await ImageRestore.run(image: top, to: target, format: format)
        #expect(summary.exportSize == 20_000_256)
        #expect(summary.bytesRead < 6 << 20, "only data is read: \(summary)")
        let compare = try qemu(["qemu-img", "compare", "-f", format.rawValue, target, "-F", "qcow2", top])
        #expect(compare.contains("Images are identical"))
        if format == .qcow2 {
            let info = try qemu(["qemu-img", "info", target])
            #expect(!info.contains("backing file"), "a restored image stands alone: \(info)")
            try qemu(["qemu-img", "check", "-q", target])
        }
        var info = stat()
        #expect(stat(target, &info) == 0 && Int(info.st_blocks) * 512 < 8 << 20, "the restored image is sparse")
    }
}
