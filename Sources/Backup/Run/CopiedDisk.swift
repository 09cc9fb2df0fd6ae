import Engine
import QCOW2
import Repository

/// What copying one disk into a point made: the image and its facts, the disk's block hashes, and what a source check
/// found.
struct CopiedDisk: Sendable {
    /// The disk's size.
    var size: UInt64
    /// The parent's image the new one is an overlay over; nil for a standalone image.
    var backing: QCOW2FileTarget.Backing?
    /// The image file's digest, when it was hashed as written.
    var digest: SplitDigest?
    /// Requests tried again.
    var retries: Int
    /// Bytes read from the export for the point (not for the check).
    var bytesRead: UInt64
    /// The point's block hashes of the disk; nil when they cannot be known (a parent without them).
    var hashes: BlockHashTable?
    /// With a source check: the ranges the dirty bitmap missed, copied all the same; nil without one.
    var missed: [Range<UInt64>]?
    /// With a source check of an incremental: the disk's block hashes where the bitmap marks nothing, read from the
    /// export before the copy.
    var sourceRead: SourceCheckRead?
    /// The manifest's entry, once written.
    var disk: BackupManifest.Disk?

    /// What the check found, for the outcome.
    var sourceCheck: SourceCheckReport? {
        guard let missed, let disk else { return nil }
        return SourceCheckReport(disk: disk.target, missed: missed)
    }
}
