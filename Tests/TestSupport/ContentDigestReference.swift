import Foundation

/// The content digest computed independently of Pullback, from the specification: a Python script reading a raw
/// image, so that a digest that is merely consistent with itself cannot pass a test.
package enum ContentDigestReference {
    /// `python3 SCRIPT RAW SIZE` prints the digest of the raw file RAW as a disk of SIZE bytes: 64 KiB blocks (the
    /// last padded with zeros) hashed with SHA-256, levels of up to 256 hashes each hashed again until one is left,
    /// and the SHA-256 of the version line, the size and that root.
    package static let script = """
        import hashlib, struct, sys
        data = open(sys.argv[1], 'rb')
        size = int(sys.argv[2])
        level = []
        while True:
            block = data.read(65536)
            if not block:
                break
            level.append(hashlib.sha256(block + bytes(65536 - len(block))).digest())
        if not level:
            root = hashlib.sha256(b'').digest()
        else:
            while len(level) > 1:
                level = [hashlib.sha256(b''.join(level[i:i + 256])).digest() for i in range(0, len(level), 256)]
            root = level[0]
        print('sha256-tree:' + hashlib.sha256(b'pullback content digest 1\\n' + struct.pack('>Q', size) + root).hexdigest())
        """

    /// Writes ``script`` as `reference.py` into `directory` and returns its path.
    package static func writeScript(into directory: String) throws -> String {
        let path = directory + "/reference.py"
        try Data(script.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }
}
