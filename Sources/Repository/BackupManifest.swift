import Foundation

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

        public init(
            target: String, virtualSize: UInt64, image: String, backingImage: String?, bytesCopied: UInt64,
            imageDigest: String? = nil
        ) {
            self.target = target
            self.virtualSize = virtualSize
            self.image = image
            self.backingImage = backingImage
            self.bytesCopied = bytesCopied
            self.imageDigest = imageDigest
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

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }()

    static func decode(_ data: Data, from path: String) throws(RepositoryError) -> BackupManifest {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let manifest: BackupManifest
        do {
            manifest = try decoder.decode(BackupManifest.self, from: data)
        } catch {
            throw RepositoryError(.corrupt, "\(path) is not a valid manifest: \(error)")
        }
        guard manifest.schemaVersion <= currentSchemaVersion else {
            throw RepositoryError(
                .corrupt,
                "\(path) has schema version \(manifest.schemaVersion); this Pullback reads up to \(currentSchemaVersion)"
            )
        }
        return manifest
    }
}
