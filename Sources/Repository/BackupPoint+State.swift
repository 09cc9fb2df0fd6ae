import Storage

extension BackupPoint {
    /// The bytes of the point's state file `entry` (one of its manifest's ``BackupManifest/state``), read confined as
    /// ``file(_:limit:)`` and checked against the recorded size and digest: a missing, damaged or changed file is
    /// ``RepositoryError/Code/corrupt``, never handed on.
    public func stateBytes(_ entry: DomainStateFile) throws(RepositoryError) -> [UInt8] {
        let path = folder + "/" + entry.file
        guard let bytes = try file(entry.file, limit: DomainStateFile.maxSize) else {
            throw RepositoryError(.corrupt, "\(path) is missing; the point's \(entry.kind.rawValue) state is lost")
        }
        let digest = DomainStateFile.digest(of: bytes)
        guard UInt64(bytes.count) == entry.size, digest == entry.digest else {
            throw RepositoryError(
                .corrupt,
                "\(path) reads \(digest) (\(bytes.count) bytes), not the recorded \(entry.digest) (\(entry.size) bytes): it is damaged"
            )
        }
        return bytes
    }
}

extension BackupPoint {
    /// Each of the point's state files as a layer to read whole and compare with its recorded digest (what `verify`
    /// does for images), with the kind of state it holds.
    public func stateLayers() throws(RepositoryError) -> [(kind: DomainStateFile.Kind, layer: ImageLayer)] {
        var layers: [(kind: DomainStateFile.Kind, layer: ImageLayer)] = []
        for entry in manifest.state ?? [] {
            let (store, key) = try storeStep { () throws(StoreError) in try object(entry.file) }
            let local = store.localPath(of: key)
            let layer = ImageLayer(
                point: id, path: local ?? store.location(of: key), recordedDigest: entry.digest,
                object: local == nil ? StoredObject(store: store, key: key) : nil)
            layers.append((entry.kind, layer))
        }
        return layers
    }
}
