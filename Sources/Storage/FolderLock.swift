import FileIO
import Synchronization
import SystemPackage

/// A lock of a ``FolderStore``: an `flock` on the lock's file, which holds the owner's name for whoever finds it
/// taken. The kernel releases it when the descriptor is closed, so also when the process dies: a killed holder never
/// leaves it taken, and a live one's never expires.
final class FolderLock: ObjectLock {
    let key: ObjectKey
    let owner: String
    private let descriptor: Mutex<FileDescriptor?>

    init(key: ObjectKey, owner: String, descriptor: FileDescriptor) {
        self.key = key
        self.owner = owner
        self.descriptor = Mutex(descriptor)
    }

    deinit {
        release()
    }

    func release() {
        descriptor.withLock { held in
            held?.closeAfterUse()  // releases the flock
            held = nil
        }
    }
}

extension FolderStore {
    public func acquireLock(_ key: ObjectKey, owner: String, expiry: Duration) throws(StoreError) -> any ObjectLock {
        guard let parent = try parent(of: key, creating: true) else {
            throw StoreError(.io, "cannot create the folder of \(location(of: key))")
        }
        defer { withExtendedLifetime(parent) {} }  // keeps its descriptor, named by path below
        let location = parent.location(of: key.name)
        let file: FileDescriptor
        do throws(ImageFileRefusal) {
            // Never through a symbolic link: the owner written below would land in whatever file it names.
            file = try FileDescriptor.openChecked(
                path: parent.entryPath(key.name), .readWrite, options: .create, permissions: Self.filePermissions,
                followingSymlinks: false, allowingDevices: false
            ).descriptor
        } catch {
            switch error {
            case .symbolicLink: throw StoreError.symbolicLink(location)
            case .refused(let type): throw StoreError(.notAnObject, "\(location) is \(type.spokenName), not a lock")
            case .failed(let call, let errno): throw StoreError(failed: call, location, errno)
            }
        }
        let locked: Bool
        do throws(Errno) { locked = try file.tryLock() } catch {
            file.closeAfterUse()
            throw StoreError(failed: "lock", location, error)
        }
        guard locked else {
            let holder = Self.owner(in: file)
            file.closeAfterUse()
            var error = StoreError(.locked, "\(location) is held by \(holder ?? "an unknown owner")")
            error.lockOwner = holder
            throw error
        }
        // Only to name the holder to whoever finds the lock taken; the lock works without it.
        try? file.truncate(to: 0)
        try? file.write(Array((owner + "\n").utf8), at: 0)
        return FolderLock(key: key, owner: owner, descriptor: file)
    }

    /// The owner the holder wrote into the lock file, if it could be read.
    private static func owner(in file: FileDescriptor) -> String? {
        var bytes = [UInt8](repeating: 0, count: 256)
        let count = (try? bytes.withUnsafeMutableBytes { buffer in try file.read(into: buffer, at: 0) }) ?? 0
        let text = String(decoding: bytes.prefix(count), as: UTF8.self)
        let owner = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        return owner.isEmpty ? nil : owner
    }
}
