import Storage

/// An ``Storage/ObjectStore`` whose objects are sealed: authenticated encryption (AES-256-GCM) in frames that keep
/// random access, over any store, under one master key. Reads and writes go through ``SealedObjectReader``,
/// ``SealedObjectWriter`` and ``SealedPlacedObjectWriter``; everything else (listing, deleting, groups, locks,
/// server-side copies) is the base store's. ``localPath(of:)`` is nil, so that callers go through objects rather than
/// open the sealed files themselves. Names, sizes (about), and which objects exist stay visible in the base store.
///
/// ## Sealed object format, version 1
/// - Header, 64 bytes in the clear: the magic `PBSEAL01` (8 bytes), the frame size as a power of two (1 byte,
///   12...20; 16 = 64 KiB by default), 23 reserved zero bytes, and a 32-byte random salt, new for every object
///   written.
/// - The object's key: HKDF-SHA256 with the master key as input key, the header's salt as salt, and
///   `"pullback sealed object v1\0"` followed by the object's logical name (UTF-8) as info; 32 bytes, for
///   AES-256-GCM.
/// - Frames: the plaintext cut into frames of the frame size, the last one possibly shorter; an empty object is one
///   empty frame, and a plaintext of a whole number of frames has no empty frame after them. Frame `i` is sealed
///   with AES-256-GCM under the object's key, nonce `i` as 12 bytes big-endian, additional data the 64-byte header,
///   `i` as 8 bytes big-endian and one byte, 1 for the final frame and 0 for any other; it is stored as its
///   ciphertext followed by its 16-byte tag.
/// - Frame `i` starts at 64 + i × (frame size + 16); a plaintext of `p` bytes in `n` frames takes 64 + p + 16n bytes.
///   A sealed size that no plaintext size gives is refused.
///
/// So a changed byte, a frame moved or swapped, a frame or object from another logical name or another write (whose
/// salt, hence key, differs), an object cut short (its last frame was not sealed as final) or one with bytes
/// appended all fail authentication. The logical name is the object's name as the caller means it for good (a
/// staged object's published name), so that publishing by renaming and server-side copies keep it readable.
public struct SealedStore: ObjectStore {
    /// The store holding the sealed objects.
    public let base: any ObjectStore
    private let key: SealingKey
    private let layout: SealedLayout
    private let logicalName: @Sendable (ObjectKey) -> String?

    /// The objects of `base` sealed under `key`, each as the logical name `logicalName` gives its key, written in
    /// frames of `layout`. An object whose logical name is nil is kept in the clear: what must be read before the key
    /// is known (a repository's own description of its key) or what only says who holds a lock.
    public init(
        _ base: any ObjectStore, key: SealingKey,
        layout: SealedLayout = SealedLayout(frameShift: SealedLayout.defaultFrameShift)!,
        logicalName: @escaping @Sendable (ObjectKey) -> String?
    ) {
        self.base = base
        self.key = key
        self.layout = layout
        self.logicalName = logicalName
    }

    public func open(_ objectKey: ObjectKey) throws(StoreError) -> (any ObjectReader)? {
        guard let name = logicalName(objectKey) else { return try base.open(objectKey) }
        guard let reader = try base.open(objectKey) else { return nil }
        return try SealedObjectReader(reader, key: key, logicalName: name, location: base.location(of: objectKey))
    }

    public func create(_ objectKey: ObjectKey) throws(StoreError) -> any ObjectWriter {
        guard let name = logicalName(objectKey) else { return try base.create(objectKey) }
        let writer = try base.create(objectKey)
        do throws(StoreError) {
            return try SealedObjectWriter(
                writer, key: key, logicalName: name, location: base.location(of: objectKey), layout: layout)
        } catch {
            writer.discard()
            throw error
        }
    }

    public func createPlaced(_ objectKey: ObjectKey, expectedSize: UInt64) throws(StoreError)
        -> any PlacedObjectWriter
    {
        guard let name = logicalName(objectKey) else {
            return try base.createPlaced(objectKey, expectedSize: expectedSize)
        }
        let writer = try base.createPlaced(
            objectKey, expectedSize: layout.sealedSize(plaintextSize: expectedSize) ?? expectedSize)
        do throws(StoreError) {
            return try SealedPlacedObjectWriter(
                writer, key: key, logicalName: name, location: base.location(of: objectKey), layout: layout)
        } catch {
            writer.discard()
            throw error
        }
    }

    /// Nil: a sealed object is no file a tool could read.
    public func localPath(of key: ObjectKey) -> String? { nil }

    public func location(of key: ObjectKey?) -> String { base.location(of: key) }
    public var writesGroupsInPlace: Bool { base.writesGroupsInPlace }
    public func rootState() throws(StoreError) -> StoreRootState { try base.rootState() }
    public func createRoot() throws(StoreError) { try base.createRoot() }
    public func kind(of key: ObjectKey) throws(StoreError) -> ObjectEntry.Kind? { try base.kind(of: key) }
    public func list(under prefix: ObjectKey?) throws(StoreError) -> [ObjectEntry] { try base.list(under: prefix) }
    public func delete(_ key: ObjectKey) throws(StoreError) { try base.delete(key) }
    public func deleteTree(_ prefix: ObjectKey) throws(StoreError) { try base.deleteTree(prefix) }
    /// What the sealed object takes in the base store.
    public func storedBytes(of key: ObjectKey) -> UInt64 { base.storedBytes(of: key) }

    public func abortLeftoverUploads(under prefix: ObjectKey) throws(StoreError) -> Int {
        try base.abortLeftoverUploads(under: prefix)
    }

    /// The base store's copy: the sealed bytes are copied as they are, so `target` must have `source`'s logical
    /// name (a staged replacement of the same object).
    public func copy(_ source: ObjectKey, replacing target: ObjectKey) throws(StoreError) {
        try base.copy(source, replacing: target)
    }

    public func beginGroup(_ group: ObjectKey, stagingAt staging: ObjectKey) throws(StoreError) -> ObjectKey {
        try base.beginGroup(group, stagingAt: staging)
    }

    public func publish(_ written: ObjectKey, as group: ObjectKey, replacing: Bool) throws(StoreError) {
        try base.publish(written, as: group, replacing: replacing)
    }

    public func withdraw(_ group: ObjectKey, to staging: ObjectKey, commit: String) throws(StoreError) -> ObjectKey {
        try base.withdraw(group, to: staging, commit: commit)
    }

    public func acquireLock(_ key: ObjectKey, owner: String, expiry: Duration) throws(StoreError) -> any ObjectLock {
        try base.acquireLock(key, owner: owner, expiry: expiry)
    }

    public func makePrivate(_ prefix: ObjectKey?, depth: Int) -> Int {
        base.makePrivate(prefix, depth: depth)
    }
}
