/// Named objects under one root: the seam between a repository and where its bytes live (a local folder today, a
/// bucket's prefix later). Keys are ``ObjectKey``s relative to the store's root, so nothing a caller names can leave
/// it.
///
/// What a store offers: a byte range of an object and its size (``open(_:)``), a new object written as a stream
/// that is visible only once complete (``create(_:)``: an ``ObjectWriter`` to ``ObjectWriter/append(_:)`` to, then
/// ``ObjectWriter/finish()`` or ``ObjectWriter/discard()``), a new object written at offsets from several threads
/// (``createPlaced(_:expectedSize:)``), the children of a prefix (``list(under:)``), deleting an object or everything
/// under a prefix, and a lock made by "create if absent" (``acquireLock(_:owner:expiry:)``).
/// Calls block (file calls, later network round trips): callers run them off Swift's cooperative pool.
///
/// ## Committing a group of objects
/// A backup point is a group of objects under one prefix (`<domain>/<id>/`): images and other files first, its
/// commit object (the manifest) last. A group is written through ``beginGroup(_:stagingAt:)``, which returns the
/// prefix to write the group's objects under, and made visible by ``publish(_:as:replacing:)``:
/// - a store that can rename (the folder store) stages: the group is written under the staging prefix
///   (`<id>.partial/`), which no reader lists, and publishing renames the staging folder to the group's name in one
///   step, after flushing every object and the folder;
/// - a store that cannot rename (a bucket) writes the group in place: the commit object, written last, is the
///   commit; a prefix without its commit object is never listed as a group by the caller and is deleted later as a
///   leftover, and publishing does nothing.
/// Either way a reader that lists groups and takes only those with a commit object sees a group whole or not at
/// all. ``withdraw(_:to:)`` is the reverse: the group leaves the listing at once (folder: renamed to a staging name;
/// bucket: its commit object deleted first), and the caller deletes the returned prefix afterwards.
public protocol ObjectStore: Sendable {
    /// Where `key` is, for messages: a path for the folder store, a URL for a bucket.
    func location(of key: ObjectKey?) -> String

    /// The path of `key` on this machine's file system, for tools that open files themselves (qemu-img, the qcow2
    /// writer); nil for a store whose objects are not files here.
    func localPath(of key: ObjectKey) -> String?

    /// Whether a group is written in place (a bucket) rather than staged and renamed (the folder store): then
    /// ``beginGroup(_:stagingAt:)`` returns the group's own prefix, a killed writer leaves a group without its commit
    /// object where readers list groups (the caller deletes it as a leftover, under its lock), and a committed group
    /// cannot be swapped for a new one in one step (``publish(_:as:replacing:)`` with `replacing` is unsupported): the
    /// caller stages a replacement elsewhere and installs it object by object (``copy(_:replacing:)``).
    var writesGroupsInPlace: Bool { get }

    /// What is at the store's root: whether the store exists, and whether it holds anything.
    func rootState() throws(StoreError) -> StoreRootState

    /// Makes the store's root when it is absent (folder: 0700, with any missing parent), or makes an empty one
    /// private; nothing when it exists with objects in it.
    func createRoot() throws(StoreError)

    /// What is at `key`: an object, a prefix with objects under it, or (folder store) something it never follows;
    /// nil when nothing is.
    func kind(of key: ObjectKey) throws(StoreError) -> ObjectEntry.Kind?

    /// The object `key` opened for ranged reads, or nil when there is none. Anything but an object there is
    /// refused: ``StoreError/Code/symbolicLink`` or ``StoreError/Code/notAnObject``.
    func open(_ key: ObjectKey) throws(StoreError) -> (any ObjectReader)?

    /// Starts the new object `key`: nothing is visible under `key` until ``ObjectWriter/finish()`` returns, and an
    /// object that exists by then is not replaced (``StoreError/Code/alreadyExists``).
    func create(_ key: ObjectKey) throws(StoreError) -> any ObjectWriter

    /// Starts the new object `key`, written at offsets (``PlacedObjectWriter``) rather than appended: nothing is
    /// visible under `key` until ``PlacedObjectWriter/finish(size:)`` returns, and an object that exists by then is
    /// not replaced. `expectedSize` is about how large the object will be (it may end larger): a bucket sizes its
    /// multipart upload's parts by it.
    func createPlaced(_ key: ObjectKey, expectedSize: UInt64) throws(StoreError) -> any PlacedObjectWriter

    /// The children of `prefix` (of the root when nil), sorted by name: objects and prefixes one level down.
    /// Empty when nothing is under it; an unreadable prefix is an error with its cause, never an empty list.
    func list(under prefix: ObjectKey?) throws(StoreError) -> [ObjectEntry]

    /// Deletes the object `key`: nothing when there is none; only the name of a symbolic link.
    func delete(_ key: ObjectKey) throws(StoreError)

    /// Deletes `prefix` and everything under it (or the object by that name); nothing when nothing is there.
    func deleteTree(_ prefix: ObjectKey) throws(StoreError)

    /// The bytes the object `key` takes in the store (folder store: allocated blocks); 0 when there is none.
    func storedBytes(of key: ObjectKey) -> UInt64

    /// Gives up what writers that never finished (their run was killed) left under `prefix` where no listing shows
    /// it, so that it stops taking space, and returns how many it gave up: a bucket's multipart uploads. Only while
    /// no writer works under `prefix` (the caller holds the repository's lock). A store whose unfinished objects
    /// are listed (the folder store's temporary files) has none and returns 0.
    func abortLeftoverUploads(under prefix: ObjectKey) throws(StoreError) -> Int

    /// Replaces the object `target` (there or not) with a copy of the object `source`, in one step: a reader of
    /// `target` sees the old object or the new one, whole, never a mix. For a store that writes groups in place (a
    /// bucket: a server-side copy), which replaces a committed group object by object, its commit object last;
    /// ``StoreError/Code/unsupported`` in a store that swaps whole groups instead (the folder store). No object
    /// `source` is ``StoreError/Code/notAnObject``.
    func copy(_ source: ObjectKey, replacing target: ObjectKey) throws(StoreError)

    /// Begins the group `group` (see the type's description) and returns the prefix its objects are written under:
    /// `staging`, made new, for a store that stages; `group` itself for one that writes in place
    /// (``writesGroupsInPlace``).
    func beginGroup(_ group: ObjectKey, stagingAt staging: ObjectKey) throws(StoreError) -> ObjectKey

    /// Makes the group written under `written` (what ``beginGroup(_:stagingAt:)`` returned) visible as `group`,
    /// once each of its objects is durable. With `replacing`, `group` exists and is swapped for the new one in one
    /// step; its old objects are then under `written`, to be deleted (``StoreError/Code/unsupported`` where the
    /// store cannot swap atomically, as a store that writes groups in place cannot). Once the group is visible, a
    /// failure to flush that is not reported: the group is committed either way.
    func publish(_ written: ObjectKey, as group: ObjectKey, replacing: Bool) throws(StoreError)

    /// Takes the group `group` out of every listing at once and returns the prefix where what is left of it is, to
    /// be deleted with ``deleteTree(_:)``: `staging` for a store that renames, `group` for one that deletes the
    /// group's commit object `commit` (a name under `group`) first.
    func withdraw(_ group: ObjectKey, to staging: ObjectKey, commit: String) throws(StoreError) -> ObjectKey

    /// Takes the lock `key` for `owner`, by creating it only if it is absent (or its holder's time is over), with
    /// an expiry `expiry` from now after which another owner may take it over. Fails at once with
    /// ``StoreError/Code/locked``, naming the holder's owner in ``StoreError/lockOwner``, when it is held. A store
    /// whose locks end with the process holding them (the folder store: `flock`) frees a dead holder's lock at once
    /// and never takes over a live one's, so there `expiry` only describes the lock.
    func acquireLock(_ key: ObjectKey, owner: String, expiry: Duration) throws(StoreError) -> any ObjectLock

    /// Sets owner-only modes (files 0600, folders 0700) on the root, on `prefix` and on what lies at most `depth`
    /// levels under it, never through a symbolic link; returns how many it changed. A store without modes
    /// returns 0.
    func makePrivate(_ prefix: ObjectKey?, depth: Int) -> Int
}

/// What is at a store's root.
public enum StoreRootState: Sendable, Equatable {
    /// Nothing: no folder (or no bucket) there.
    case absent
    /// Something that cannot be a store: a file where the folder should be.
    case notAStore
    /// A store without objects. `temporaries` is how many leftover temporary objects (names starting with `.`
    /// and ending in `.tmp`, of writers not finished) it has.
    case empty(temporaries: [String])
    /// A store with objects.
    case populated
}

/// One child of a prefix, as ``ObjectStore/list(under:)`` reports it.
public struct ObjectEntry: Sendable, Equatable {
    /// What the entry is.
    public enum Kind: Sendable, Equatable {
        /// An object.
        case object
        /// A prefix with children (a folder).
        case prefix
        /// A symbolic link (folder store): never followed, only deleted by name.
        case symbolicLink
        /// Anything else a folder can hold (a FIFO, a socket, a device): never opened.
        case other
    }

    /// The entry's name under the prefix (bytes that are not UTF-8 shown repaired: such a name is never valid).
    public var name: String
    /// What it is.
    public var kind: Kind

    /// The entry `name` of `kind`.
    public init(name: String, kind: Kind) {
        self.name = name
        self.kind = kind
    }
}

extension ObjectStore {
    /// None: by default a store's unfinished objects are listed, as the folder store's temporary files are.
    public func abortLeftoverUploads(under prefix: ObjectKey) throws(StoreError) -> Int {
        0
    }

    /// Writes `bytes` as the new object `key` (see ``create(_:)``).
    public func write(_ bytes: [UInt8], to key: ObjectKey) throws(StoreError) {
        let writer = try create(key)
        do throws(StoreError) {
            try bytes.withUnsafeBytes { buffer in Result { () throws(StoreError) in try writer.append(buffer) } }.get()
            try writer.finish()
        } catch {
            writer.discard()
            throw error
        }
    }

    /// The whole object `key` when it holds at most `limit` bytes, or nil when there is none. A larger object, or
    /// one that grows while it is read, is ``StoreError/Code/notAnObject``.
    public func read(_ key: ObjectKey, limit: UInt64) throws(StoreError) -> [UInt8]? {
        guard let reader = try open(key) else { return nil }
        guard reader.size <= limit else {
            throw StoreError(
                .notAnObject, "\(location(of: key)) is \(reader.size) bytes, more than \(limit) this object may have")
        }
        // One byte more than its size, to notice an object that grows while it is read.
        var bytes = [UInt8](repeating: 0, count: Int(reader.size) + 1)
        var count = 0
        while count < bytes.count {
            let read = try bytes.withUnsafeMutableBytes { buffer in
                Result { () throws(StoreError) in
                    try reader.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[count...]), at: UInt64(count))
                }
            }.get()
            if read == 0 { break }
            count += read
        }
        guard count <= reader.size else {
            throw StoreError(.notAnObject, "\(location(of: key)) grew while it was read")
        }
        bytes.removeLast(bytes.count - count)
        return bytes
    }
}
