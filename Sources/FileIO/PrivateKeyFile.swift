import SystemPackage

// A private key that others can read is no longer private: as ssh does with identity files, a key open to the group
// or to others is refused before it is used, so the mistake is mended instead of carried on unnoticed.

/// Checks on a file that holds a secret: a TLS private key or a pre-shared key.
package enum PrivateKeyFile {
    /// One line saying what is wrong with the key file `path` and how to mend it, or nil when only its owner may read
    /// or change it. A missing file is not this check's business (nil): the code that reads the key says so in its
    /// own words. A symbolic link is followed, since the key is read through it.
    ///
    /// The corresponding C function is `stat`.
    package static func problem(at path: String) -> String? {
        guard let status = try? Stat(path, followTargetSymlink: true) else { return nil }
        let mode = status.permissions.rawValue & 0o777
        guard mode & 0o077 != 0 else { return nil }
        let octal = String(mode, radix: 8)
        return "\(path) holds a secret key, yet others than its owner may read or change it (mode 0\(octal)): "
            + "run chmod 600 \(path)"
    }
}
