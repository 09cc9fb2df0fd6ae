import FileIO
import Foundation
import SystemPackage

/// The `<description>` of a checkpoint Pullback creates: which repository made it, by tag and absolute path, as
/// `pullback repository 0a1b2c3d at /srv/backups/vms`. libvirt keeps nothing else about who made a checkpoint, and
/// without it the checkpoints of a repository deleted or moved away could be tied to no folder.
///
/// A description read back is untrusted text: anyone who can create checkpoints on the domain writes it, and a
/// repository moved since names a stale path. Its path is only ever opened read-only, as a repository, to see whether
/// that repository still holds a point for the checkpoint.
enum CheckpointDescription {
    static let lead = "pullback repository "
    static let separator = " at "

    /// The description of the checkpoint `name` that the repository at `root` creates; `root` is made absolute (the
    /// working directory of the run means nothing later).
    ///
    /// A path holding a character a description cannot carry (``BackupXML/isRecordable(_:)``) is left out, as
    /// `pullback repository 0a1b2c3d`: libvirt refuses the whole checkpoint over one, which would fail every backup
    /// into the repository. Its checkpoints are then listed as of an unknown repository, which `--repo` can check. So
    /// is a relative path when the working folder cannot be read: a wrong path would name another folder.
    static func text(for name: String, repository root: String) -> String {
        let tag = lead + (CheckpointName.tag(of: name) ?? "")
        guard let path = try? absolute(root) else { return tag }
        return path.unicodeScalars.allSatisfy(BackupXML.isRecordable) ? tag + separator + path : tag
    }

    /// Whether `text` is a description ``text(for:repository:)`` wrote without the path: the tag alone.
    static func isPathLeftOut(_ text: String) -> Bool {
        text.hasPrefix(lead) && text.count == lead.count + 8 && CheckpointName.isTag(String(text.dropFirst(lead.count)))
    }

    /// The repository tag and path a description names, nil unless it has the form ``text(for:repository:)`` writes
    /// with an absolute path (an older Pullback wrote just `pullback`; another tool, anything).
    static func repository(in text: String) -> (tag: String, path: String)? {
        guard text.hasPrefix(lead) else { return nil }
        let rest = text.dropFirst(lead.count)
        let tag = String(rest.prefix(8))
        let path = rest.dropFirst(8)
        guard CheckpointName.isTag(tag), path.hasPrefix(separator + "/") else { return nil }
        return (tag, String(path.dropFirst(separator.count)))
    }

    /// `root` as an absolute path without `.` and `..` components; symbolic links are kept as the user named them.
    /// Throws when `root` is relative and the working folder cannot be read (it was removed, say).
    static func absolute(_ root: String) throws(Errno) -> String {
        let path = root.hasPrefix("/") ? root : try FileDescriptor.currentFolder() + "/" + root
        return URL(fileURLWithPath: path).standardizedFileURL.path
    }
}
