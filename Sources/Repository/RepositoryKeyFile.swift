import FileIO
import Sealing
import SystemPackage

/// The file that holds an encrypted repository's key (`--key-file`, `PULLBACK_KEY_FILE`): either the key itself,
/// exactly 32 bytes that are not all text, or a passphrase (text, one trailing newline ignored), which scrypt
/// stretches into the key. Like an ssh identity, the file must be its owner's alone.
public enum RepositoryKeyFile {
    /// What a key file holds.
    public enum Material: Sendable {
        /// The key itself.
        case raw(SealingKey)
        /// A passphrase, to be stretched with the repository's scrypt parameters.
        case passphrase([UInt8])
    }

    /// The most bytes a key file may have: a passphrase longer than this is a mistaken file.
    static let maximumSize = 4096
    /// The fewest bytes a passphrase may have.
    static let minimumPassphraseLength = 8

    /// What the key file `path` holds; ``RepositoryError/Code/keyFile`` in one line saying what to do when it is
    /// missing, not a regular file, open to others than its owner, empty, too short or too long.
    public static func read(_ path: String) throws(RepositoryError) -> Material {
        let bytes = try contents(of: path)
        if bytes.count == SealingKey.byteCount, !bytes.allSatisfy(isText), let key = SealingKey(bytes: bytes) {
            return .raw(key)
        }
        var passphrase = bytes[...]
        if passphrase.last == UInt8(ascii: "\n") { passphrase = passphrase.dropLast() }
        if passphrase.last == UInt8(ascii: "\r") { passphrase = passphrase.dropLast() }
        guard passphrase.count >= minimumPassphraseLength else {
            throw RepositoryError(
                .keyFile,
                "\(path) holds \(passphrase.count) bytes: a key file holds a passphrase of at least "
                    + "\(minimumPassphraseLength) bytes or a raw key of exactly \(SealingKey.byteCount) random bytes "
                    + "(head -c \(SealingKey.byteCount) /dev/urandom > FILE)")
        }
        return .passphrase(Array(passphrase))
    }

    /// The bytes of `path`, a private regular file of at most ``maximumSize`` bytes.
    private static func contents(of path: String) throws(RepositoryError) -> [UInt8] {
        let status: Stat?
        do { status = try FileDescriptor.status(ofTarget: path) } catch {
            throw RepositoryError(.keyFile, "cannot read the key file \(path): \(error)", cause: error)
        }
        guard let status else {
            throw RepositoryError(
                .keyFile, "the key file \(path) does not exist: check --key-file or PULLBACK_KEY_FILE")
        }
        guard status.type == .regular else {
            throw RepositoryError(
                .keyFile, "the key file \(path) is not a regular file: give the file that holds the key")
        }
        if let problem = PrivateKeyFile.problem(at: path) { throw RepositoryError(.keyFile, problem) }
        guard status.size <= maximumSize else {
            throw RepositoryError(
                .keyFile,
                "the key file \(path) is \(status.size) bytes, more than a key or passphrase (at most \(maximumSize)): check --key-file"
            )
        }
        do {
            let file = try FileDescriptor.open(path, .readOnly, options: [.closeOnExec, .nonBlocking])
            defer { try? file.close() }
            var bytes = [UInt8](repeating: 0, count: maximumSize + 1)
            var count = 0
            while count < bytes.count {
                let read = try bytes.withUnsafeMutableBytes { buffer in
                    try file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[count...]))
                }
                if read == 0 { break }
                count += read
            }
            guard count <= maximumSize else {
                throw RepositoryError(.keyFile, "the key file \(path) grew past \(maximumSize) bytes while it was read")
            }
            return Array(bytes.prefix(count))
        } catch let error as RepositoryError {
            throw error
        } catch {
            throw RepositoryError(.keyFile, "cannot read the key file \(path): \(error)", cause: error)
        }
    }

    /// Whether `byte` is printable ASCII or a line's white space.
    private static func isText(_ byte: UInt8) -> Bool {
        (0x20...0x7e).contains(byte) || byte == 0x09 || byte == 0x0a || byte == 0x0d
    }
}
