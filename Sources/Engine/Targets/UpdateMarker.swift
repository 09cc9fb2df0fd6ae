import Foundation

/// A small file beside a target that says an in-place update of it has begun and not yet finished.
///
/// It exists from before the first byte of an incremental update is written until the updated target is
/// flushed, so a target whose update was interrupted (crash, SIGINT, full disk) is recognisable: its
/// contents mix two points in time. Only a new full copy clears it.
struct UpdateMarker {
    let targetPath: String
    var path: String { targetPath + ".pullback-updating" }

    var exists: Bool { TargetPaths.exists(path) }

    /// Refuses to go on when an earlier update did not finish.
    func checkAbsent() throws(CopyError) {
        guard !exists else {
            throw CopyError(
                .targetMismatch,
                "\(targetPath) is incomplete: an earlier incremental update of it was interrupted (\(path) exists); make a new full copy with --overwrite"
            )
        }
    }

    /// Creates the marker durably, before the target is touched. ``checkAbsent()`` has made sure that nothing
    /// has its name, so it is created new (mode 0600), never written through a symbolic link.
    func create(describing update: String) throws(CopyError) {
        let file = try TargetFile.create(path)
        defer { file.close() }
        try file.write(Array("\(update)\nstarted \(Date())\n".utf8), at: 0)
        try file.sync()
        try TargetPaths.syncFolder(directory)
    }

    /// Removes the marker durably, once the target holds the new point.
    func remove() throws(CopyError) {
        guard exists else { return }
        TargetPaths.remove(path)
        try TargetPaths.syncFolder(directory)
    }

    var directory: String { NewFile.directory(of: targetPath) }
}
