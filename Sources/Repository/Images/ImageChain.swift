import FileIO
import QCOW2
import Storage
import SystemPackage
import UntrustedText

/// The images one disk of a point is read from, by the repository's rules of names: the point's own image, then its
/// parent point's, down to a standalone image, each with the backing file name its header must record.
///
/// Built from the committed points and their manifests only, never from a name read out of an image: every image is
/// the domain's folder, a committed point's id and `<target>.qcow2`. A manifest's `backingImage` must be exactly
/// `../<parent>/<target>.qcow2`, with `<parent>` the manifest's `parent` and a committed point of the same domain that
/// has the disk; anything else is refused. Throws ``RepositoryError/Code/invalidName`` for a target that is no name,
/// ``RepositoryError/Code/notFound`` when the point has no such disk, and ``RepositoryError/Code/corrupt`` (or
/// ``RepositoryError/Code/io``) when a manifest names anything but what it may, a parent is missing, a folder is not
/// a folder, or the chain loops or is deeper than `maximumDepth`.
struct ImageChain {
    let store: any ObjectStore
    let domainKey: ObjectKey
    let domain: String
    let target: String
    let maximumDepth: Int

    /// The layers of `target` at `point`, one of `points`.
    func layers(at point: BackupPoint, among points: [BackupPoint]) throws(RepositoryError) -> [ImageLayer] {
        guard RepositoryNames.isValid(target) else {
            throw RepositoryError(.invalidName, "\(printable(target)) is not a disk target name")
        }
        try requireFolder(domainKey)
        // Keyed by the ids' bytes (see `same`): a chain of a thousand points looks each parent up once, rather than
        // scanning every point for each link.
        var byID: [[UInt8]: BackupPoint] = [:]
        for listed in points where byID[Array(listed.id.utf8)] == nil { byID[Array(listed.id.utf8)] = listed }
        var visited: Set<[UInt8]> = [Array(point.id.utf8)]
        var layers: [ImageLayer] = []
        var current = point
        while true {
            guard layers.count < maximumDepth else {
                throw RepositoryError(
                    .corrupt,
                    "disk \(target) of point \(point.id) of \(domain) is based on more than \(maximumDepth) points; make a full backup"
                )
            }
            let (layer, parentID) = try self.layer(of: current, top: point, child: layers.last)
            layers.append(layer)
            guard let parentID else { return layers }
            guard let parent = byID[Array(parentID.utf8)] else {
                throw RepositoryError(
                    .corrupt,
                    "point \(current.id) of \(domain) is based on \(printable(parentID)), which is not in the repository; restore it from another copy of the repository"
                )
            }
            guard visited.insert(Array(parent.id.utf8)).inserted else {
                throw RepositoryError(
                    .corrupt,
                    "the points of \(domain) name each other as parents (\(parent.id)); the repository is damaged")
            }
            current = parent
        }
    }

    /// The image of the disk in `current` (the chain's `top`, or a parent of `child`), and the id of the point it is
    /// backed by, nil for a standalone image.
    private func layer(of current: BackupPoint, top: BackupPoint, child: ImageLayer?) throws(RepositoryError)
        -> (ImageLayer, String?)
    {
        let imageName = RepositoryLayout.imageName(for: target)
        guard let disk = current.manifest.disks.first(where: { same($0.target, target) }) else {
            guard let child else {
                let available = current.manifest.disks.map { printable($0.target) }.joined(separator: ", ")
                throw RepositoryError(
                    .notFound, "point \(top.id) of \(domain) has no disk \(printable(target)); it has \(available)")
            }
            throw RepositoryError(
                .corrupt,
                "disk \(target) of point \(child.point) of \(domain) is backed by point \(current.id), which has no disk \(target); the repository is damaged"
            )
        }
        guard same(disk.image, imageName) else {
            throw RepositoryError(
                .corrupt,
                "the manifest of point \(current.id) of \(domain) names image \(printable(disk.image)) for disk \(target); a repository image may only be \(imageName)"
            )
        }
        let pointKey = try storeStep { () throws(StoreError) in try domainKey.appending(current.id) }
        try requireFolder(pointKey)
        let imageKey = try storeStep { () throws(StoreError) in try pointKey.appending(imageName) }
        let path = store.localPath(of: imageKey) ?? store.location(of: imageKey)
        // An image that is no local file is read from its object.
        let object = store.localPath(of: imageKey) == nil ? StoredObject(store: store, key: imageKey) : nil
        guard let backing = disk.backingImage else {
            let layer = ImageLayer(
                point: current.id, path: path, backingName: nil, recordedDigest: disk.imageDigest, object: object)
            return (layer, nil)
        }
        guard let parentID = current.manifest.parent, RepositoryNames.isValid(parentID) else {
            throw RepositoryError(
                .corrupt,
                "the manifest of point \(current.id) of \(domain) gives disk \(target) the backing image \(printable(backing)) but names no parent point it could be"
            )
        }
        let expected = RepositoryLayout.backingName(parent: parentID, target: target)
        guard same(backing, expected) else {
            throw RepositoryError(
                .corrupt,
                "the manifest of point \(current.id) of \(domain) gives disk \(target) the backing image \(printable(backing)); a repository image may only be backed by \(printable(expected))"
            )
        }
        let layer = ImageLayer(
            point: current.id, path: path, backingName: expected, recordedDigest: disk.imageDigest, object: object)
        return (layer, parentID)
    }

    /// A folder of the repository must be a folder itself, not a symbolic link to one elsewhere.
    private func requireFolder(_ key: ObjectKey) throws(RepositoryError) {
        let location = store.location(of: key)
        let kind: ObjectEntry.Kind?
        do throws(StoreError) { kind = try store.kind(of: key) } catch {
            throw RepositoryError(.io, "cannot read \(location): \(error.cause.map { "\($0)" } ?? error.message)")
        }
        switch kind {
        case .prefix: return
        case nil:
            throw RepositoryError(.io, "cannot read \(location): \(Errno.noSuchFileOrDirectory)")
        case .object: throw notAFolder(location, "a regular file")
        case .symbolicLink: throw notAFolder(location, "a symbolic link")
        case .other: throw notAFolder(location, "a special file")
        }
    }

    private func notAFolder(_ location: String, _ what: String) -> RepositoryError {
        RepositoryError(.corrupt, "\(location) is \(what), not a folder; a repository's folders must be folders")
    }

    /// `name` with its control characters escaped, for a message.
    private func printable(_ name: String) -> String { UntrustedText.escaped(name) }

    /// Compares as bytes: two Strings are equal when canonically equivalent, two file names only when identical.
    private func same(_ a: String, _ b: String) -> Bool {
        a.utf8.elementsEqual(b.utf8)
    }
}

extension BackupRepository {
    /// The longest chain of images a disk may have: the most layers a chain reader opens.
    public static let maximumChainDepth = QCOW2Chain.maximumLayers

    /// The images disk `target` of `point` (one of `points`, the committed points of `domain`) is read from, top
    /// first, as the repository's rules name them (see ``ImageChain``); reads no image.
    public func imageLayers(of target: String, at point: BackupPoint, among points: [BackupPoint], domain: String)
        throws(RepositoryError) -> [ImageLayer]
    {
        let domainKey = try storeStep { () throws(StoreError) in try RepositoryLayout.domain(domain) }
        let chain = ImageChain(
            store: store, domainKey: domainKey, domain: domain, target: target, maximumDepth: Self.maximumChainDepth)
        return try chain.layers(at: point, among: points)
    }

    /// ``imageLayers(of:at:among:domain:)`` for points of the domain folder `domainFolder` of some repository.
    public static func imageLayers(
        of target: String, at point: BackupPoint, among points: [BackupPoint], domain: String,
        inFolder domainFolder: String
    ) throws(RepositoryError) -> [ImageLayer] {
        let slash = domainFolder.lastIndex(of: "/")
        let root = slash.map { $0 == domainFolder.startIndex ? "/" : String(domainFolder[..<$0]) } ?? "."
        let name = String(slash.map { domainFolder[domainFolder.index(after: $0)...] } ?? domainFolder[...])
        let domainKey = try storeStep { () throws(StoreError) in try ObjectKey(components: [name]) }
        let chain = ImageChain(
            store: FolderStore(root: root), domainKey: domainKey, domain: domain, target: target,
            maximumDepth: maximumChainDepth)
        return try chain.layers(at: point, among: points)
    }

    /// The repository and domain `point` was listed from: the store it came from and the first part of its key, or,
    /// for a point made up from its folder alone, the folder `<repository>/<domain>/<id>` taken apart.
    public static func containing(_ point: BackupPoint) throws(RepositoryError) -> (
        repository: BackupRepository, domain: String
    ) {
        if let location = point.location, location.key.components.count == 2 {
            return (BackupRepository(store: location.store), location.key.components[0])
        }
        let suffix = "/" + point.id
        guard RepositoryNames.isValid(point.id), point.folder.hasSuffix(suffix) else {
            throw RepositoryError(
                .invalidName, "point \(UntrustedText.escaped(point.id)) is not in a folder of its id")
        }
        let domainFolder = String(point.folder.dropLast(suffix.count))
        guard let slash = domainFolder.lastIndex(of: "/") else {
            throw RepositoryError(.invalidName, "point \(point.id) is not in a repository's domain folder")
        }
        let domain = String(domainFolder[domainFolder.index(after: slash)...])
        return (BackupRepository(root: String(domainFolder[..<slash])), domain)
    }
}
