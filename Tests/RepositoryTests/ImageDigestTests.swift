import Foundation
import Repository
import TestSupport
import Testing

/// An image's digest read back from its file, in either recorded form, equals coreutils' `sha256sum`.
@Suite struct ImageDigestTests {
    static func sha256sum(_ command: String) async throws -> String {
        let result = try await ChildProcess.run(["sh", "-c", command + " | sha256sum"])
        guard result.succeeded, let hex = result.stdout.split(separator: " ").first else {
            throw HarnessError("\(result)")
        }
        return String(hex)
    }

    @Test("a whole file's digest is sha256sum's; a split one is that of head and tail, at the recorded length")
    func bothForms() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("image.qcow2")
        let bytes = (0..<(5 << 20) + 123).map { _ in UInt8.random(in: 0...255) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        let whole = try ImageDigest.ofFile(path)
        #expect(whole == "sha256:" + (try await Self.sha256sum("cat '\(path)'")))

        for head in [512, 65536, 2 << 20] {
            let zeros = String(repeating: "0", count: 64)
            let split = try ImageDigest.ofFile(path, like: "sha256-split:\(head):\(zeros):\(zeros)")
            let expected = [
                "sha256-split:\(head)", try await Self.sha256sum("head -c \(head) '\(path)'"),
                try await Self.sha256sum("tail -c +\(head + 1) '\(path)'"),
            ]
            #expect(split == expected.joined(separator: ":"))
            #expect(RepositoryNames.isValidDigest(split))
        }
        for head in [512, 65536] {
            let zeros = String(repeating: "0", count: 64)
            let pieces = try ImageDigest.ofFile(path, like: "sha256-pieces:\(head):\(zeros):\(zeros)")
            #expect(pieces == (try await PiecewiseDigest.of(path, head: head)))
            #expect(RepositoryNames.isValidDigest(pieces))
        }
        // A recorded digest that is not valid is read as a whole file's.
        #expect(try ImageDigest.ofFile(path, like: "sha256-split:3:x:y") == whole)
    }
}
