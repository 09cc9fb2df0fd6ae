import SystemPackage

/// Why a tree was not removed (whole): what is left of it stays where it was.
package struct FileTreeError: Error, Sendable, CustomStringConvertible {
    package enum Reason: Sendable, Equatable {
        /// A system call failed.
        case failed(call: String, Errno)
        /// The tree holds folders nested deeper than ``FileTree/maximumDepth``; nothing below that depth is touched.
        case tooDeep
    }

    package let reason: Reason
    /// The entry the failure is about, for messages only: the names from the folder the removal started in,
    /// joined by `/` (bytes that are not UTF-8 shown repaired). It is never used to reach the entry.
    package let entry: String

    init(_ reason: Reason, at names: [EntryName]) {
        self.reason = reason
        self.entry = names.map(\.description).joined(separator: "/")
    }

    init(_ reason: Reason, entry: String) {
        self.reason = reason
        self.entry = entry
    }

    /// The same failure, its entry named from `folder` on.
    package func under(_ folder: String) -> FileTreeError {
        FileTreeError(reason, entry: folder.hasSuffix("/") ? folder + entry : folder + "/" + entry)
    }

    /// The system call's error, if a call failed.
    package var errno: Errno? {
        if case .failed(_, let errno) = reason { return errno }
        return nil
    }

    /// One line: what failed, and on which entry.
    package var description: String {
        switch reason {
        case .failed(let call, let errno): "cannot \(call) \(entry): \(errno)"
        case .tooDeep:
            "\(entry) is nested more than \(FileTree.maximumDepth) folders deep, deeper than any tree Pullback makes; it was left in place"
        }
    }
}
