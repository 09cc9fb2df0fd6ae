import Foundation
import Repository
import TestSupport
import Testing

/// An image's digest read back from its file, in either recorded form, equals coreutils' `sha256sum`.
@Suite struct ImageDigestTests {
    @Test("a whole file's digest is sha256sum's; a split one is that of head and tail, at the recorded length")
    func bothForms() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("image.qcow2")
        let bytes = SeededRandom.bytes((5 << 20) + 123, seed: 1)
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        let whole = try ImageDigest.ofFile(path)
        #expect(whole == "sha256:" + (try await Coreutils.sha256sum(of: "cat '\(path)'")))

        for head in [512, 65536, 2 << 20] {
            let zeros = String(repeating: "0", count: 64)
            let split = try ImageDigest.ofFile(path, like: "sha256-split:\(head):\(zeros):\(zeros)")
            let expected = [
                "sha256-split:\(head)", try await Coreutils.sha256sum(of: "head -c \(head) '\(path)'"),
                try await Coreutils.sha256sum(of: "tail -c +\(head + 1) '\(path)'"),
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
