import FileIO
import SystemPackage

/// A folder of a ``FolderStore`` held open, so that every name is looked up in it rather than by a path built
/// again from the store's root: a folder swapped for a symbolic link after it was opened steers nothing.
///
/// FileIO has `openat`-style calls for folders and removals; for the other calls (opening a file, `link`,
/// `rename`, `mkdir`) the entry is named `/proc/self/fd/<n>/<name>`, which Linux resolves in the folder the
/// descriptor has open, exactly as the `*at` calls do (the last component still obeys `O_NOFOLLOW`).
final class OpenFolder: Sendable {
    let descriptor: FileDescriptor
    /// The folder's location, for messages only.
    let location: String

    init(descriptor: FileDescriptor, location: String) {
        self.descriptor = descriptor
        self.location = location
    }

    deinit {
        descriptor.closeAfterUse()
    }

    /// A path naming the entry `name` of this folder, resolved through the open descriptor. It names the entry only
    /// while this folder is alive: a caller keeps it so (`withExtendedLifetime`) until its call has run, or the
    /// descriptor's number could name another file by then.
    func entryPath(_ name: String) -> String {
        "/proc/self/fd/\(descriptor.rawValue)/" + name
    }

    /// The location of the entry `name`, for messages.
    func location(of name: String) -> String {
        location + "/" + name
    }

    /// The folder `name` in this one, or nil when nothing has that name or it is an object (which holds nothing).
    /// With `creating`, a missing folder is made (0700). A symbolic link is ``StoreError/Code/symbolicLink``.
    func folder(named name: String, creating: Bool) throws(StoreError) -> OpenFolder? {
        let entry = EntryName(name)
        while true {
            do throws(Errno) {
                let opened = try descriptor.openFolder(named: entry)
                return OpenFolder(descriptor: opened, location: location(of: name))
            } catch .noSuchFileOrDirectory where creating {
                do throws(Errno) {
                    try FilePaths.makeFolder(entryPath(name), permissions: FolderStore.folderPermissions)
                } catch  where error == .fileExists {
                    // Made meanwhile by another writer; opened (and checked) again.
                } catch {
                    throw StoreError(failed: "create", location(of: name), error)
                }
            } catch .noSuchFileOrDirectory {
                return nil
            } catch .tooManySymbolicLinkLevels {
                throw StoreError.symbolicLink(location(of: name))
            } catch .notDirectory {
                // O_NOFOLLOW with O_DIRECTORY may report a symbolic link as not a folder.
                if try kind(of: name) == .symbolicLink { throw StoreError.symbolicLink(location(of: name)) }
                guard creating else { return nil }
                throw StoreError(.notAnObject, "\(location(of: name)) is not a folder, and a folder must be there")
            } catch {
                throw StoreError(failed: "open", location(of: name), error)
            }
        }
    }

    /// What the entry `name` is, not following a symbolic link; nil when nothing has the name.
    func kind(of name: String) throws(StoreError) -> ObjectEntry.Kind? {
        let status: Stat?
        do throws(Errno) { status = try descriptor.status(ofEntry: EntryName(name)) } catch {
            throw StoreError(failed: "inspect", location(of: name), error)
        }
        return status.map { ObjectEntry.Kind($0.type) }
    }

    /// Flushes the folder, so that new names, renames and removals in it are durable.
    func sync() throws(StoreError) {
        do throws(Errno) { try descriptor.sync() } catch { throw StoreError(failed: "flush", location, error) }
    }
}

extension ObjectEntry.Kind {
    /// The kind of a file of `type`.
    init(_ type: FileType) {
        switch type {
        case .regular: self = .object
        case .directory: self = .prefix
        case .symbolicLink: self = .symbolicLink
        default: self = .other
        }
    }
}

extension StoreError {
    /// A failed file call on `location`, with the errno as the cause; a full disk or quota gets its own code.
    init(failed what: String, _ location: String, _ errno: Errno) {
        switch errno {
        case .noSpace, .diskQuotaExceeded:
            self.init(.noSpace, "no space left for \(location) (\(errno))", cause: errno)
        default:
            self.init(.io, "cannot \(what) \(location): \(errno)", cause: errno)
        }
    }

    /// A symbolic link at `location`, which the folder store never follows.
    static func symbolicLink(_ location: String) -> StoreError {
        StoreError(.symbolicLink, "\(location) is a symbolic link")
    }
}
