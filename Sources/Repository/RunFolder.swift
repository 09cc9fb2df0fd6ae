import FileIO
import SystemPackage

/// The private folder a backup run makes for its NBD export socket (and scratch images): `/tmp/pullback-XXXXXX` by
/// `mkdtemp`, 0700, short enough for a unix socket path. A job record names the socket inside it; cleaning up after
/// a killed run removes the folder only when the record's socket path can be shown to be in such a folder: one this
/// user made with this template, not a symbolic link, mode 0700. A crafted record naming any other folder removes
/// nothing.
public enum RunFolder {
    static let parent = "/tmp"
    static let prefix = "pullback-"
    /// The export socket's name inside the folder.
    public static let socketName = "nbd.sock"

    /// Makes a new run folder and returns its path.
    public static func make() throws(RepositoryError) -> String {
        do throws(Errno) { return try FilePaths.makeTemporaryFolder(parent + "/" + prefix + "XXXXXX") } catch {
            throw RepositoryError(failed: "create a private folder in", parent, error)
        }
    }

    /// The run folder holding `socket`, when `socket` is `<folder>/nbd.sock` and the folder is a run folder of this
    /// user (see the type's description); nil for anything else.
    public static func owning(socket: String) -> String? {
        let head = parent + "/" + prefix
        let tail = "/" + socketName
        guard socket.hasPrefix(head), socket.hasSuffix(tail) else { return nil }
        let random = socket.utf8.dropFirst(head.utf8.count).dropLast(tail.utf8.count)
        let isAlphanumeric = { (byte: UInt8) in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
        }
        guard random.count == 6, random.allSatisfy(isAlphanumeric) else { return nil }
        let folder = String(socket.dropLast(tail.count))
        guard let status = try? FilePaths.status(ofName: folder), status.type == .directory,
            status.userID.rawValue == FilePaths.userID, status.permissions.rawValue & 0o7777 == 0o700
        else { return nil }
        return folder
    }

    /// Removes the run folder `folder` and what is in it (the socket, scratch images), through descriptors
    /// (``FileIO/FileTree``); a failure is ignored, as the folder holds nothing of value.
    public static func remove(_ folder: String) {
        try? FileTree.remove(atPath: folder)
    }
}
