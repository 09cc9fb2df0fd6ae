import Storage

extension BackupPoint {
    /// The objects the point holds besides its manifest (its images, block hashes and saved XML), by name, each
    /// with its size; the leftover temporary objects of a writer (`.<name>.tmp`) are not among them. A folder, a
    /// symbolic link or anything else that is not an object inside a point is ``RepositoryError/Code/corrupt``.
    public func objects() throws(RepositoryError) -> [(name: String, size: UInt64)] {
        let entries = try storeStep { () throws(StoreError) in
            if let location { return try location.store.list(under: location.key) }
            return try FolderStore(root: folder).list(under: nil)
        }
        var names: [String] = []
        for entry in entries where entry.name != RepositoryLayout.manifestName && !entry.name.hasPrefix(".") {
            guard entry.kind == .object else {
                throw RepositoryError(
                    .corrupt,
                    "\(folder)/\(RepositoryNames.quoted(entry.name)) is not a file; a point holds only files, and this one is damaged"
                )
            }
            names.append(entry.name)
        }
        var objects: [(name: String, size: UInt64)] = []
        for name in names.sorted() {
            let reader = try storeStep { () throws(StoreError) in
                let (store, key) = try object(name)
                return try store.open(key)
            }
            // Gone since it was listed: a prune withdrawing the point. Copying it fails then, naming it.
            objects.append((name, reader?.size ?? 0))
        }
        return objects
    }

    /// The point's manifest exactly as committed (its bytes, not re-encoded), read confined as ``file(_:limit:)``.
    public func committedManifest() throws(RepositoryError) -> [UInt8] {
        guard let bytes = try file(RepositoryLayout.manifestName, limit: UInt64(RepositoryNames.maxSmallFileSize))
        else {
            throw RepositoryError(.notFound, "\(folder)/\(RepositoryLayout.manifestName) vanished")
        }
        return bytes
    }

    /// The store and key of the object `name` of the point.
    func object(_ name: String) throws(StoreError) -> (store: any ObjectStore, key: ObjectKey) {
        if let location { return (location.store, try location.key.appending(name)) }
        return (FolderStore(root: folder), try ObjectKey(components: [name]))
    }
}
