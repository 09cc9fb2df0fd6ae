import UntrustedText

/// The one place that decides what a repository may name. A repository is untrusted input (copied between hosts,
/// handed between teams, edited by hand), and its names become paths: a point id, a domain folder, a disk target and
/// an image name are each a single path component of `[A-Za-z0-9._-]`, not starting with `.` (so never `.` or `..`,
/// and never a hidden file such as `.lock`), not empty, and at most ``maxLength`` bytes. Nothing in such a name can
/// climb out of its folder, cut a path at a NUL, or move the terminal when printed.
public enum RepositoryNames {
    /// The longest name accepted: room for `<target>.qcow2` and `<id>.partial` within the file system's 255.
    public static let maxLength = 128
    /// The most disks one point may have.
    public static let maxDisks = 256
    /// The largest virtual size a disk may have: 2^63 bytes, the most a file offset can reach.
    public static let maxVirtualSize: UInt64 = 1 << 63
    /// The largest manifest, job record or saved XML read from a repository.
    public static let maxSmallFileSize = 4 << 20

    /// Whether `name` is a single path component pullback may use in a repository.
    public static func isValid(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count <= maxLength, bytes[0] != UInt8(ascii: ".") else { return false }
        return bytes.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                true
            default: false
            }
        }
    }

    /// Throws ``RepositoryError/Code/corrupt`` naming `file` and `field` unless `name` ``isValid(_:)``.
    public static func check(_ name: String, field: String, in file: String) throws(RepositoryError) {
        guard isValid(name) else {
            throw RepositoryError(.corrupt, "\(file): \(field) \(quoted(name)) \(rule); the repository is damaged")
        }
    }

    /// Throws ``RepositoryError/Code/invalidName`` unless `name`, asked for by the caller as a `what` (`domain`,
    /// `point`), ``isValid(_:)``.
    public static func checkRequested(_ name: String, as what: String) throws(RepositoryError) {
        guard isValid(name) else {
            throw RepositoryError(.invalidName, "a repository cannot hold the \(what) \(quoted(name)): it \(rule)")
        }
    }

    /// What a valid name is, for messages.
    static let rule =
        "is not a single name of letters, digits, '.', '_' and '-' (not starting with '.', at most \(maxLength) bytes)"

    /// Whether `digest` has one of ``ImageDigest``'s forms, with lowercase hex digits.
    public static func isValidDigest(_ digest: String) -> Bool {
        ImageDigest.isValid(digest)
    }

    /// Whether `digest` has the form of a content digest (Engine's `ContentDigest`): `sha256-tree:` and 64 lowercase
    /// hex digits.
    public static func isValidContentDigest(_ digest: String) -> Bool {
        let prefix = "sha256-tree:"
        guard digest.hasPrefix(prefix) else { return false }
        let hex = digest.utf8.dropFirst(prefix.utf8.count)
        return hex.count == 64 && hex.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    /// `text` in double quotes for a one-line message: control characters, quotes and backslashes escaped, cut
    /// after 80 characters, so nothing from a repository can break the line or move the terminal.
    public static func quoted(_ text: String) -> String { UntrustedText.quoted(text) }
}
