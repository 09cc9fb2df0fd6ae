import FileIO
import Foundation
import SystemPackage

/// How a new target file becomes visible: written under a temporary name beside its path, flushed, then
/// renamed over the path and the directory flushed. Before the rename nothing at the path changes.
enum NewFile {
    static func temporaryPath(for path: String) -> String {
        let url = URL(fileURLWithPath: path)
        return url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).pullback-partial").path
    }

    static func directory(of path: String) -> String {
        let directory = (path as NSString).deletingLastPathComponent
        return directory.isEmpty ? "." : directory
    }

    /// The mode of a new target: 0600, or when it replaces a regular file, that file's mode, so `--overwrite`
    /// neither widens nor narrows who may read the disk.
    static func permissions(for path: String, replacing: Bool) -> FilePermissions {
        (replacing ? FilePaths.permissions(ofRegularFile: path) : nil) ?? .ownerOnly
    }

    static func checkReplaceable(_ path: String, replacing: Bool) throws(CopyError) {
        if !replacing && TargetPaths.exists(path) {
            throw CopyError(
                .targetMismatch,
                "\(path) exists; pass --overwrite to replace it with a full copy, or --bitmap NAME to update it")
        }
    }

    /// Renames the flushed temporary file over `path` durably and clears a raw target's update marker.
    static func commit(_ temporary: String, as path: String) async throws(CopyError) {
        try await BlockingWork.run { () throws(CopyError) in
            do throws(CopyError) {
                try TargetPaths.rename(temporary, to: path)
            } catch {
                TargetPaths.remove(temporary)
                throw error
            }
            try TargetPaths.syncFolder(directory(of: path))
            try UpdateMarker(targetPath: path).remove()
        }
    }
}

/// Relative paths between files, for backing file names that survive moving a repository.
enum RelativePath {
    /// `target` as seen from the directory that holds `file`.
    static func from(directoryOf file: String, to target: String) -> String {
        let base = URL(fileURLWithPath: file).deletingLastPathComponent().standardizedFileURL.resolvingSymlinksInPath()
            .pathComponents
        let destination = URL(fileURLWithPath: target).standardizedFileURL.resolvingSymlinksInPath().pathComponents
        var common = 0
        while common < base.count, common < destination.count, base[common] == destination[common] { common += 1 }
        let ups = Array(repeating: "..", count: base.count - common)
        return (ups + destination[common...]).joined(separator: "/")
    }
}
