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

    /// A new point id for `date`: UTC, to the second, e.g. `20261129T170722Z`.
    public static func id(for date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return formatter.string(from: date)
    }
}
