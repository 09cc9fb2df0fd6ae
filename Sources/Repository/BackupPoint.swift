import Foundation

/// A committed backup point: its folder and manifest.
public struct BackupPoint: Sendable, Equatable {
    /// The point's id, which is also its folder name; ids sort by time.
    public var id: String
    /// The point's folder.
    public var folder: String
    /// What the point holds.
    public var manifest: BackupManifest

    /// The image file of disk `target`, or nil if the point has no such disk.
    public func imagePath(for target: String) -> String? {
        manifest.disks.first { $0.target == target }.map { folder + "/" + $0.image }
    }

    /// The small file `name` the point keeps beside its images (`domain.xml`, `checkpoint.xml`) as text, or nil
    /// when the point has none. Read confined like the manifest: never through a symbolic link, never from a FIFO
    /// or device, never more than ``RepositoryNames/maxSmallFileSize``.
    public func savedFile(_ name: String) throws(RepositoryError) -> String? {
        try RepositoryNames.checkRequested(name, as: "file")
        return try FileSync.readSmallFile(folder + "/" + name).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The file `name` beside the point's images (a disk's block hashes), read confined as ``savedFile(_:)`` is, when
    /// it holds at most `limit` bytes; nil when the point has none.
    public func file(_ name: String, limit: UInt64) throws(RepositoryError) -> [UInt8]? {
        try RepositoryNames.checkRequested(name, as: "file")
        return try FileSync.readFile(folder + "/" + name, limit: limit)
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
