/// A backup point being written, in `<id>.partial`: never listed and never a parent until committed.
public final class PendingPoint: Sendable {
    /// The id the point will have.
    public let id: String
    /// The folder being written (`<id>.partial`).
    public let folder: String

    init(id: String, folder: String) {
        self.id = id
        self.folder = folder
    }

    /// Where disk `target`'s image goes: `<folder>/<target>.qcow2`.
    public func imagePath(for target: String) -> String { folder + "/" + Self.imageName(for: target) }

    /// The image file name of disk `target` inside a point.
    public static func imageName(for target: String) -> String { target + ".qcow2" }

    /// Where disk `target`'s block hashes go: `<folder>/<target>.blocks`.
    public func blockHashesPath(for target: String) -> String { folder + "/" + Self.blockHashesName(for: target) }

    /// The name of disk `target`'s block hashes file inside a point.
    public static func blockHashesName(for target: String) -> String { target + ".blocks" }

    /// Writes a small file (domain or checkpoint XML) into the point, durably.
    public func write(_ contents: String, to name: String) throws(RepositoryError) {
        try writeFile(Array(contents.utf8), to: name)
    }

    /// Writes the file `name` (a disk's block hashes) into the point, durably.
    public func writeFile(_ bytes: [UInt8], to name: String) throws(RepositoryError) {
        try FileSync.writeDurably(bytes, to: folder + "/" + name)
    }
}
