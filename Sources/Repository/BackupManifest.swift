import Foundation
import QCOW2

/// The `manifest.json` of a backup point: what other tools and later versions read to understand it.
public struct BackupManifest: Sendable, Codable, Equatable {
    /// The layout version this manifest follows.
    public static let currentSchemaVersion = 1

    /// How a point relates to the one before it.
    public enum Level: String, Sendable, Codable {
        /// Every disk is a standalone image.
        case full
        /// Disks are overlays backed by the parent point's images (new disks are standalone).
        case incremental
    }

    /// One disk of the point.
    public struct Disk: Sendable, Codable, Equatable {
        /// The disk's target name in the domain (`vda`).
        public var target: String
        /// The disk's virtual size in bytes.
        public var virtualSize: UInt64
        /// The image file, relative to the point's folder (`vda.qcow2`).
        public var image: String
        /// The image's backing file as stored in it (`../<parent>/vda.qcow2`), or nil for a standalone image.
        public var backingImage: String?
        /// Bytes read from the disk for this point.
        public var bytesCopied: UInt64
        /// The image file's ``ImageDigest`` (`sha256:<hex>`) as committed; nil in points made before digests were
        /// kept.
        public var imageDigest: String?
        /// The disk's content digest at this point (`sha256-tree:<hex>`, Engine's `ContentDigest`): of the bytes the
        /// guest read, not of the image file. nil in points made before content digests were kept, and in a point whose
        /// parent has none.
        public var contentDigest: String?
        /// The file beside the image holding the disk's block hashes (`<target>.blocks`), from which the next point's
        /// content digest is built; set with ``contentDigest``.
        public var blockHashes: String?

        public init(
            target: String, virtualSize: UInt64, image: String, backingImage: String?, bytesCopied: UInt64,
            imageDigest: String? = nil, contentDigest: String? = nil, blockHashes: String? = nil
        ) {
            self.target = target
            self.virtualSize = virtualSize
            self.image = image
            self.backingImage = backingImage
            self.bytesCopied = bytesCopied
            self.imageDigest = imageDigest
            self.contentDigest = contentDigest
            self.blockHashes = blockHashes
        }
    }

    public var schemaVersion: Int
    public var domainName: String
    public var domainUUID: String
    public var level: Level
    /// The checkpoint created with this point; the next incremental starts from it.
    public var checkpoint: String
    /// The point this one is based on (nil for a full point).
    public var parent: String?
    public var started: Date
    public var finished: Date
    public var disks: [Disk]
    /// True for a full point built from a chain rather than read from the disks in full: one that `prune` rewrote
    /// from an incremental one (its chain merged into standalone images, without the domain; its times, checkpoint and
    /// disks' `bytesCopied` are the original point's), or one a backup at `--max-chain` built from the newest point's
    /// chain and the changes since (`bytesCopied` then counts what was read from the disks); absent otherwise.
    public var synthetic: Bool?
    /// The parent the point had before `prune` made it a synthetic full, or the point a backup's synthetic full was
    /// built on; absent otherwise.
    public var originalParent: String?
    /// True when the backup read every disk in full and proved the point equal to it (`backup --check-source`),
    /// repairing what the dirty bitmap missed; absent otherwise.
    public var sourceChecked: Bool?
    /// How the point's images store their clusters (`zstd:3`, `deflate:6`) when compressed; absent when not. The
    /// next point keeps it unless told otherwise.
    public var compression: String?
    /// The domain's state beyond its disks at this point (its NVRAM, its emulated TPM's files), each a whole object of
    /// the point; absent when the domain has none, when its hypervisor is remote, and in points made before it was
    /// kept.
    public var state: [DomainStateFile]?

    public init(
        domainName: String, domainUUID: String, level: Level, checkpoint: String, parent: String?, started: Date,
        finished: Date, disks: [Disk]
    ) {
        self.schemaVersion = Self.currentSchemaVersion
        self.domainName = domainName
        self.domainUUID = domainUUID
        self.level = level
        self.checkpoint = checkpoint
        self.parent = parent
        self.started = started
        self.finished = finished
        self.disks = disks
    }

    /// ``compression`` as the writer takes it: none when absent (or not one the writer knows, which
    /// ``validate(id:domain:file:)`` refuses).
    public var clusterCompression: ClusterCompression {
        compression.flatMap(ClusterCompression.init) ?? .none
    }

    /// Whether `prune` rewrote the point as a full one (``synthetic``).
    public var isSynthetic: Bool { synthetic == true }

    /// The bytes read for the point, over all its disks; saturates at `UInt64.max` rather than trapping on a
    /// manifest whose numbers add up to more.
    public var totalBytesCopied: UInt64 {
        disks.reduce(0) { total, disk in
            let (sum, overflow) = total.addingReportingOverflow(disk.bytesCopied)
            return overflow ? .max : sum
        }
    }

    /// Checks the manifest of point `id` of `domain`, read from `file`, against what a repository may hold: names
    /// (``RepositoryNames``), the image and backing file each disk must have, sizes, counts and digests. Throws
    /// ``RepositoryError/Code/corrupt`` naming `file` and the field.
    public func validate(id: String, domain: String, file: String) throws(RepositoryError) {
        func bad(_ field: String, _ problem: String) -> RepositoryError {
            RepositoryError(.corrupt, "\(file): \(field) \(problem); the repository is damaged")
        }
        guard (1...Self.currentSchemaVersion).contains(schemaVersion) else {
            throw bad("schemaVersion", "is \(schemaVersion); this Pullback reads 1 to \(Self.currentSchemaVersion)")
        }
        try RepositoryNames.check(id, field: "the point id (its folder)", in: file)
        try RepositoryNames.check(domainName, field: "domainName", in: file)
        guard domainName == domain else {
            throw bad(
                "domainName",
                "\(RepositoryNames.quoted(domainName)) is not its folder's \(RepositoryNames.quoted(domain))")
        }
        guard domainUUID.utf8.count <= 64, domainUUID.allSatisfy({ $0.isHexDigit || $0 == "-" }) else {
            throw bad("domainUUID", "\(RepositoryNames.quoted(domainUUID)) is not a UUID")
        }
        try RepositoryNames.check(checkpoint, field: "checkpoint", in: file)
        if let parent {
            try RepositoryNames.check(parent, field: "parent", in: file)
            guard parent != id else { throw bad("parent", "names the point itself") }
        }
        switch (level, parent) {
        case (.full, .some): throw bad("parent", "is set for a full point")
        case (.incremental, .none): throw bad("parent", "is missing for an incremental point")
        default: break
        }
        if synthetic != nil, level != .full { throw bad("synthetic", "is set for an incremental point") }
        if let originalParent {
            try RepositoryNames.check(originalParent, field: "originalParent", in: file)
            guard isSynthetic else { throw bad("originalParent", "is set for a point that is not synthetic") }
        }
        if let compression, ClusterCompression(compression) == nil || compression == "none" {
            throw bad("compression", "\(RepositoryNames.quoted(compression)) is not zstd:LEVEL or deflate:LEVEL")
        }
        guard (1...RepositoryNames.maxDisks).contains(disks.count) else {
            throw bad("disks", "has \(disks.count) entries; a point has 1 to \(RepositoryNames.maxDisks)")
        }
        var targets = Set<String>()
        var total: UInt64 = 0
        for (index, disk) in disks.enumerated() {
            try validate(disk, field: "disks[\(index)]", file: file, targets: &targets, total: &total)
        }
        if let state {
            guard state.count <= DomainStateFile.maxCount else {
                throw bad("state", "has \(state.count) entries; a point has at most \(DomainStateFile.maxCount)")
            }
            var seen = Set<String>()
            for (index, entry) in state.enumerated() {
                try entry.validate(field: "state[\(index)]", file: file, seen: &seen)
            }
        }
    }

    /// The state file of kind `kind` (the first, for a TPM's several), if the point has one.
    public func stateFile(_ kind: DomainStateFile.Kind) -> DomainStateFile? {
        state?.first { $0.kind == kind }
    }

    /// Checks one disk of the manifest (see ``validate(id:domain:file:)``), called `field` in messages; `targets`
    /// collects the targets seen so far and `total` the bytes copied, which must not overflow.
    private func validate(
        _ disk: Disk, field: String, file: String, targets: inout Set<String>, total: inout UInt64
    ) throws(RepositoryError) {
        func bad(_ field: String, _ problem: String) -> RepositoryError {
            RepositoryError(.corrupt, "\(file): \(field) \(problem); the repository is damaged")
        }
        try RepositoryNames.check(disk.target, field: field + ".target", in: file)
        guard targets.insert(disk.target).inserted else {
            throw bad(field + ".target", "\(RepositoryNames.quoted(disk.target)) appears twice")
        }
        let image = PendingPoint.imageName(for: disk.target)
        guard disk.image == image else {
            throw bad(field + ".image", "is \(RepositoryNames.quoted(disk.image)), not \(image)")
        }
        if let backing = disk.backingImage {
            guard let parent, backing == RepositoryLayout.backingName(parent: parent, target: disk.target) else {
                throw bad(
                    field + ".backingImage",
                    "is \(RepositoryNames.quoted(backing)), not the parent point's ../\(parent ?? "<no parent>")/\(image)"
                )
            }
        }
        guard disk.virtualSize <= RepositoryNames.maxVirtualSize else {
            throw bad(field + ".virtualSize", "is \(disk.virtualSize), more than 2^63 bytes")
        }
        // No backup reads more than 2^64 bytes: a total that overflows is a forged number.
        let (sum, overflow) = total.addingReportingOverflow(disk.bytesCopied)
        guard !overflow else { throw bad(field + ".bytesCopied", "makes the point's total exceed 2^64 bytes") }
        total = sum
        if let digest = disk.imageDigest, !RepositoryNames.isValidDigest(digest) {
            throw bad(
                field + ".imageDigest",
                "\(RepositoryNames.quoted(digest)) is neither sha256:<hex> nor sha256-split:<length>:<hex>:<hex> (64 lowercase hex digits each)"
            )
        }
        if let digest = disk.contentDigest, !RepositoryNames.isValidContentDigest(digest) {
            throw bad(
                field + ".contentDigest",
                "\(RepositoryNames.quoted(digest)) is not sha256-tree:<64 lowercase hex digits>")
        }
        if let blocks = disk.blockHashes {
            let name = PendingPoint.blockHashesName(for: disk.target)
            guard blocks == name else {
                throw bad(field + ".blockHashes", "is \(RepositoryNames.quoted(blocks)), not \(name)")
            }
            guard disk.contentDigest != nil else { throw bad(field + ".blockHashes", "is set without contentDigest") }
        }
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }()

    /// Decodes the manifest `data` read from `path`, without checking what it names: see ``validate(id:domain:file:)``,
    /// and ``decodeValid(_:from:id:domain:)`` for both.
    static func decode(_ data: Data, from path: String) throws(RepositoryError) -> BackupManifest {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let manifest: BackupManifest
        do {
            manifest = try decoder.decode(BackupManifest.self, from: data)
        } catch {
            throw RepositoryError(.corrupt, "\(path) is not a valid manifest: \(Self.summary(of: error))")
        }
        guard manifest.schemaVersion <= currentSchemaVersion else {
            throw RepositoryError(
                .corrupt,
                "\(path) has schema version \(manifest.schemaVersion); this Pullback reads up to \(currentSchemaVersion)"
            )
        }
        return manifest
    }

    /// Decodes and validates the manifest `data` of point `id` of `domain`, read from `path`: what every reader of
    /// a repository uses.
    public static func decodeValid(_ data: Data, from path: String, id: String, domain: String) throws(RepositoryError)
        -> BackupManifest
    {
        let manifest = try decode(data, from: path)
        try manifest.validate(id: id, domain: domain, file: path)
        return manifest
    }

    /// A decoding error in one line, with the field it is about and no text from the file.
    private static func summary(of error: any Error) -> String {
        func field(_ path: [any CodingKey]) -> String {
            let names = path.map { $0.intValue.map { "[\($0)]" } ?? "." + $0.stringValue }.joined()
            return names.isEmpty ? "the top level" : RepositoryNames.quoted(String(names.drop { $0 == "." }))
        }
        switch error {
        case DecodingError.keyNotFound(let key, let context):
            return "\(field(context.codingPath + [key])) is missing"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            return "\(field(context.codingPath)) has the wrong type"
        case DecodingError.dataCorrupted(let context):
            return context.codingPath.isEmpty ? "it is not JSON" : "\(field(context.codingPath)) has a bad value"
        default:
            return "it cannot be decoded"
        }
    }
}
