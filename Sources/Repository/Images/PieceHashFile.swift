import FileIO
import Foundation
import Synchronization
import SystemPackage

/// The file where a restore's ``ImagePieceLedger``s keep their pieces' hashes, each ledger in a region of its own:
/// made in the restore's folder with its name removed at once, so nothing is left behind whatever happens, and one
/// for all the images of a restore, so that a chain of thousands of images takes one descriptor, not thousands.
package final class PieceHashFile: Sendable {
    let descriptor: FileDescriptor
    private let end = Mutex<UInt64>(0)

    /// A new file in `folder`; the folder must exist.
    package init(in folder: String) throws(RepositoryError) {
        let path = folder + "/.pullback-digest-" + UUID().uuidString
        do throws(Errno) {
            descriptor = try FileDescriptor.open(
                path: path, .readWrite, options: [.create, .exclusiveCreate, .noFollow],
                permissions: [.ownerReadWrite])
        } catch {
            throw RepositoryError(
                .io, "cannot make a scratch file in \(folder) to check the images as they are read: \(error)",
                cause: error)
        }
        try? FilePaths.remove(path)
    }

    deinit {
        descriptor.closeAfterUse()
    }

    /// A region of `bytes` for one ledger; returns where it starts. The file grows as the ledger writes it.
    func reserve(bytes: UInt64) -> UInt64 {
        end.withLock { end in
            defer { end += bytes }
            return end
        }
    }
}
