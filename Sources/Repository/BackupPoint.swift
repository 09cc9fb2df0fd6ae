import Foundation
import Storage

/// A committed backup point: its folder and manifest, and where its files are read from.
public struct BackupPoint: Sendable, Equatable {
    /// The point's id, which is also its folder name; ids sort by time.
    public var id: String
    /// The point's folder.
    public var folder: String
    /// What the point holds.
    public var manifest: BackupManifest
    /// The store the point was listed from and its prefix there; nil for a point made up from a folder alone, whose
    /// files are then read from that folder.
    let location: (store: any ObjectStore, key: ObjectKey)?

    /// The point `id` in `folder`, read from that folder.
    init(id: String, folder: String, manifest: BackupManifest) {
        self.id = id
        self.folder = folder
        self.manifest = manifest
        self.location = nil
    }

    /// The point `id` listed from `store`, under `key`.
    init(id: String, manifest: BackupManifest, key: ObjectKey, in store: any ObjectStore) {
        self.id = id
        self.folder = store.localPath(of: key) ?? store.location(of: key)
        self.manifest = manifest
        self.location = (store, key)
    }

    public static func == (a: BackupPoint, b: BackupPoint) -> Bool {
        a.id == b.id && a.folder == b.folder && a.manifest == b.manifest
    }

    /// The backing file name an overlay of disk `target` based on point `parent` records: `../<parent>/<target>.qcow2`.
    public static func backingName(parent: String, target: String) -> String {
        RepositoryLayout.backingName(parent: parent, target: target)
    }

    /// The image file of disk `target`, or nil if the point has no such disk.
    public func imagePath(for target: String) -> String? {
        manifest.disks.first { $0.target == target }.map { folder + "/" + $0.image }
    }

    /// The small file `name` the point keeps beside its images (`domain.xml`, `checkpoint.xml`) as text, or nil
    /// when the point has none. Read confined like the manifest: never through a symbolic link, never from a FIFO
    /// or device, never more than ``RepositoryNames/maxSmallFileSize``.
    public func savedFile(_ name: String) throws(RepositoryError) -> String? {
        try file(name, limit: UInt64(RepositoryNames.maxSmallFileSize)).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The file `name` beside the point's images (a disk's block hashes), read confined as ``savedFile(_:)`` is, when
    /// it holds at most `limit` bytes; nil when the point has none.
    public func file(_ name: String, limit: UInt64) throws(RepositoryError) -> [UInt8]? {
        try RepositoryNames.checkRequested(name, as: "file")
        return try storeStep { () throws(StoreError) in
            guard let location else { return try FolderStore(root: folder).read(ObjectKey(name), limit: limit) }
            return try location.store.read(location.key.appending(name), limit: limit)
        }
    }

    /// A new point id for `date`: UTC, to the second, e.g. `20261129T170722Z`.
    public static func id(for date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return formatter.string(from: date)
    }
}
