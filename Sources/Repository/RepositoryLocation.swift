/// What a `--repo` string may be: a local folder, or a bucket (`s3://BUCKET/PREFIX`, ``BucketAddress``). Any other
/// URL (`sftp://host/x`) is refused: it would otherwise be taken for a relative path and become a folder named
/// `sftp:` in the working directory.
public enum RepositoryLocation {
    /// Throws ``RepositoryError/Code/unsupportedLocation`` when `root` starts like a URL, `scheme://`, of any scheme
    /// but `s3`, and ``RepositoryError/Code/invalidName`` for an `s3://` URL that names no valid bucket and prefix.
    static func check(_ root: String) throws(RepositoryError) {
        guard let scheme = scheme(of: root) else { return }
        if try BucketAddress.parse(root) != nil { return }
        throw RepositoryError(
            .unsupportedLocation,
            "\(root) is a URL (\(scheme)://), and pullback keeps repositories in local folders or S3 buckets (s3://BUCKET/PREFIX); give the path of a folder (mount the storage first if it is remote) or a bucket"
        )
    }

    /// The scheme of `root` if it is `scheme://...`: a letter, then letters, digits, `+`, `-` or `.` (RFC 3986).
    static func scheme(of root: String) -> String? {
        guard let colon = root.firstIndex(of: ":"), root[colon...].hasPrefix("://") else { return nil }
        let scheme = root[..<colon].unicodeScalars
        guard let first = scheme.first, first.isASCIILetter,
            scheme.allSatisfy({ $0.isASCIILetter || $0.isASCIIDigit || "+-.".unicodeScalars.contains($0) })
        else { return nil }
        return String(scheme)
    }

    /// `path` as one shell word, for a command the user is told to run: single-quoted when it holds anything but
    /// letters, digits and `/._-+,:@%=`.
    public static func shellWord(_ path: String) -> String {
        let plain =
            !path.isEmpty
            && path.unicodeScalars.allSatisfy {
                $0.isASCIILetter || $0.isASCIIDigit || "/._-+,:@%=".unicodeScalars.contains($0)
            }
        guard !plain else { return path }
        var quoted = "'"
        for character in path { quoted += character == "'" ? "'\\''" : String(character) }
        return quoted + "'"
    }
}

extension Unicode.Scalar {
    fileprivate var isASCIILetter: Bool { ("a"..."z").contains(self) || ("A"..."Z").contains(self) }
    fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
