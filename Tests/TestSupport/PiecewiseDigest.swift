import Foundation

/// An image's piecewise digest (`sha256-pieces:`) computed by Python's hashlib from the specification, independently of
/// Pullback's code: SHA-256 of the first `head` bytes, and SHA-256 of the SHA-256s of each 64 KiB piece of the rest,
/// the last padded with zeros, and of the rest's length (8 bytes, big-endian).
package enum PiecewiseDigest {
    static let script = """
        import hashlib, sys
        data = open(sys.argv[1], 'rb')
        head = hashlib.sha256(data.read(int(sys.argv[2]))).hexdigest()
        tail = hashlib.sha256()
        length = 0
        while True:
            piece = data.read(65536)
            if not piece:
                break
            length += len(piece)
            tail.update(hashlib.sha256(piece + bytes(65536 - len(piece))).digest())
        tail.update(length.to_bytes(8, 'big'))
        print('sha256-pieces:%s:%s:%s' % (sys.argv[2], head, tail.hexdigest()))
        """

    /// The digest of the file `path` split after `head` bytes.
    package static func of(_ path: String, head: Int = 65536) async throws -> String {
        let result = try await ChildProcess.run(["python3", "-c", script, path, String(head)])
        guard result.succeeded else { throw HarnessError("\(result)") }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
