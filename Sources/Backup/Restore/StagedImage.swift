import FileIO
import Foundation
import SystemPackage

/// A restored image's two names in the `--to` folder: the hidden name it is written under, and the name it takes
/// once every disk of the restore is written.
///
/// A restore that fails or is interrupted removes its hidden images, and one killed outright leaves only hidden
/// names that are the restore's own: the next restore of the disk removes them, so nothing left by an earlier run
/// ever blocks the next one, and no image of a half-done restore ever has the name of a finished one.
struct StagedImage: Sendable {
    /// The name the image ends with, `<folder>/<target>.<format>`.
    let path: String
    /// The hidden name it is written under, `<folder>/.<target>.<format>.pullback-restore`.
    let stagedPath: String

    init(folder: String, name: String) {
        path = folder + "/" + name
        stagedPath = folder + "/." + name + ".pullback-restore"
    }

    /// Refuses, before anything is written, a name that cannot be given to the image: anything there when
    /// `overwrite` is false; a folder in any case (a rename cannot replace one).
    func checkReplaceable(overwrite: Bool) throws(BackupError) {
        let status: Stat?
        do throws(Errno) { status = try FilePaths.status(ofName: path) } catch {
            throw BackupError(.invalidRequest, "cannot inspect \(path): \(error)")
        }
        guard let status else { return }
        guard overwrite else {
            throw BackupError(
                .invalidRequest,
                "\(path) exists; pass --overwrite to replace it with the restored image, or restore into another folder"
            )
        }
        if status.type == .directory {
            throw BackupError(
                .invalidRequest,
                "\(path) is a folder, which a restored image cannot replace; move it or choose another --to")
        }
    }

    /// Removes what an earlier restore left at the hidden name: it is this tool's own name, never a user's file.
    func removeLeftover() throws(BackupError) {
        do throws(Errno) { try FilePaths.remove(stagedPath) } catch .noSuchFileOrDirectory {
        } catch {
            throw BackupError(
                .invalidRequest,
                "\(stagedPath) is in the way of the restore and cannot be removed (\(error)); remove it and restore again"
            )
        }
    }

    /// Removes the hidden image, when a restore does not finish.
    func discard() {
        try? FilePaths.remove(stagedPath)
    }

    /// Gives the written image its name. With `overwrite`, whatever has the name is replaced in one step (a rename:
    /// a symbolic link there is replaced, never followed); without it, a name taken since the restore began is left
    /// alone and the restore fails.
    func commit(overwrite: Bool) throws(BackupError) {
        do throws(Errno) {
            if overwrite {
                try FilePaths.rename(stagedPath, to: path)
                return
            }
            // A second name, then the hidden one removed: unlike a rename, a link never replaces what has the name.
            do throws(Errno) {
                try FilePaths.link(stagedPath, as: path)
            } catch .notPermitted, .notSupported {
                // A file system without hard links: the name was free when the restore began, and is checked again.
                guard !FilePaths.exists(path) else { throw Errno.fileExists }
                try FilePaths.rename(stagedPath, to: path)
                return
            }
            try? FilePaths.remove(stagedPath)
        } catch .fileExists {
            throw BackupError(
                .invalidRequest,
                "\(path) appeared while the restore ran; pass --overwrite to replace it, or restore into another folder"
            )
        } catch {
            throw BackupError(.copy, "cannot name the restored image \(path): \(error)", cause: error)
        }
    }
}
