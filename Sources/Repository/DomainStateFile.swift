import Crypto

/// A file of a domain's state beyond its disks, kept whole in each point beside the images: the UEFI variable store
/// (NVRAM) QEMU's firmware writes, or a file of an emulated TPM's state (swtpm's `tpm2-00.permall`). Such files are
/// small (the NVRAM of OVMF is 528 KiB or 2 MiB, a TPM's state tens of KiB), so a point holds them in full, never as a
/// chain; in an encrypted repository they are sealed like every other object.
public struct DomainStateFile: Sendable, Codable, Equatable {
    /// What the file is.
    public enum Kind: String, Sendable, Codable {
        /// The domain's UEFI variable store (`<os><nvram>`).
        case nvram
        /// A file of an emulated TPM's state (swtpm's state folder, `tpm2/` or `tpm1.2/`).
        case tpm
    }

    public var kind: Kind
    /// The object in the point: ``nvramName`` for the NVRAM, the state file's own name for a TPM (`tpm2-00.permall`).
    public var file: String
    /// The file's size in bytes.
    public var size: UInt64
    /// `sha256:<hex>` of the file, as `sha256sum` prints it.
    public var digest: String

    public init(kind: Kind, file: String, size: UInt64, digest: String) {
        self.kind = kind
        self.file = file
        self.size = size
        self.digest = digest
    }

    /// The entry for `bytes`, the content of the file `file` of kind `kind`.
    public init(kind: Kind, file: String, bytes: [UInt8]) {
        self.init(kind: kind, file: file, size: UInt64(bytes.count), digest: Self.digest(of: bytes))
    }

    /// The NVRAM's object in a point.
    public static let nvramName = "nvram.fd"
    /// The largest state file a point keeps or a restore reads: far above any firmware's variable store or TPM state.
    public static let maxSize: UInt64 = 64 << 20
    /// The most state files one point may have.
    public static let maxCount = 8

    /// The digest a manifest records for `bytes`: `sha256:<hex>`, what ``ImageDigest`` gives for a whole file.
    public static func digest(of bytes: [UInt8]) -> String {
        ImageDigest.prefix + Hex.encode(SHA256.hash(data: bytes))
    }

    /// Whether `name` is a file swtpm keeps in a TPM's state folder (`tpm2-00.permall`, `tpm-00.volatilestate`,
    /// ...): the only TPM files a point may hold, so that none can take an image's or another file's name.
    public static func isTPMFileName(_ name: String) -> Bool {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, ["permall", "volatilestate", "savestate"].contains(parts[1]) else { return false }
        let stem = parts[0]
        let prefix = stem.hasPrefix("tpm2-") ? "tpm2-" : stem.hasPrefix("tpm-") ? "tpm-" : nil
        guard let prefix else { return false }
        let number = stem.dropFirst(prefix.count)
        return number.count == 2 && number.utf8.allSatisfy { (48...57).contains($0) }
    }

    /// The folder of swtpm's state the TPM file `name` belongs in: `tpm2` for a TPM 2.0 (`tpm2-00.permall`), `tpm1.2`
    /// for a TPM 1.2 (`tpm-00.permall`).
    public static func tpmFolder(of name: String) -> String { name.hasPrefix("tpm2-") ? "tpm2" : "tpm1.2" }

    /// Checks the entry, called `field` in messages about `file`, against what a point may hold; `seen` collects the
    /// objects named so far.
    func validate(field: String, file manifestFile: String, seen: inout Set<String>) throws(RepositoryError) {
        func bad(_ what: String, _ problem: String) -> RepositoryError {
            RepositoryError(.corrupt, "\(manifestFile): \(field).\(what) \(problem); the repository is damaged")
        }
        switch kind {
        case .nvram:
            guard file == Self.nvramName else {
                throw bad("file", "is \(RepositoryNames.quoted(file)), not \(Self.nvramName)")
            }
        case .tpm:
            guard Self.isTPMFileName(file) else {
                throw bad("file", "\(RepositoryNames.quoted(file)) is not a TPM state file's name (tpm2-00.permall)")
            }
        }
        guard seen.insert(file).inserted else { throw bad("file", "\(RepositoryNames.quoted(file)) appears twice") }
        guard size <= Self.maxSize else { throw bad("size", "is \(size), more than \(Self.maxSize) bytes") }
        guard digest.hasPrefix(ImageDigest.prefix), ImageDigest.isValid(digest) else {
            throw bad("digest", "\(RepositoryNames.quoted(digest)) is not sha256:<64 lowercase hex digits>")
        }
    }
}
