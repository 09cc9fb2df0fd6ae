import FileIO
import Foundation
import SystemPackage

/// What a live restore and a mount ask of local paths they make: a folder that is empty, a path a child process
/// makes, and names removed one by one (never a tree by its path: a folder left non-empty, or a mount still on it,
/// stays rather than being emptied).
enum LocalPaths {
    /// Whether `path` is a folder with nothing in it.
    static func isEmptyFolder(_ path: String) -> Bool {
        var isFolder: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) && isFolder.boolValue
            && (try? FileManager.default.contentsOfDirectory(atPath: path))?.isEmpty == true
    }

    /// Waits up to `seconds` for `path` to exist, while `waiting` holds; whether it does.
    static func appears(_ path: String, within seconds: Int, while waiting: () -> Bool = { true }) async -> Bool {
        for _ in 0..<(seconds * 20) {
            if FileManager.default.fileExists(atPath: path) { return true }
            guard waiting() else { break }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return FileManager.default.fileExists(atPath: path)
    }

    /// Removes each of `names` (files, links, sockets, empty folders), ignoring what is gone or not empty.
    static func remove(_ names: [String]) {
        for name in names {
            do throws(Errno) { try FilePaths.remove(name) } catch {
                try? FilePaths.removeFolder(name)
            }
        }
    }
}
