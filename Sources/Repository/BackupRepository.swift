import FileIO
import Foundation
import Sealing
import Storage

/// A repository of backups over an ``Storage/ObjectStore``: `<domain>/<id>/` per committed point, as laid out in the
/// design's contract (``RepositoryLayout`` names every key).
///
/// A point is committed by its manifest, written last, and published as the store publishes a group (see
/// ``Storage/ObjectStore``): the folder store stages it in `<id>.partial/` and renames that folder, fully written and
/// flushed, to its id, so listing never shows a half-written point, and a failed run leaves nothing a later run
/// would use.
public struct BackupRepository: Sendable {
    /// Where the repository is: its root folder, for a folder store.
    public let root: String
    /// Where its objects are.
    public let store: any ObjectStore

    /// The repository at `root`, a folder or a bucket (`s3://BUCKET/PREFIX`), not yet checked: every call that
    /// reads or writes checks that `root` is one (see ``requireRepository()``), and none makes it. ``open(root:)``
    /// checks at once; ``create(root:)`` makes one.
    public init(root: String) {
        self.root = root
        self.store = RepositoryStores.store(for: root)
    }

    /// The repository in `store`, not yet checked, as ``init(root:)``.
    public init(store: any ObjectStore) {
        self.root = store.location(of: nil)
        self.store = store
    }

    /// Whether the repository is encrypted: its objects sealed (see ``RepositoryEncryption``).
    public var isEncrypted: Bool { store is SealedStore }

    /// The folder holding `domain`'s points.
    public func folder(of domain: String) -> String { root + "/" + domain }

    /// The domains that have a folder in the repository (a real folder with a valid name), sorted; throws
    /// ``RepositoryError/Code/notARepository`` when the root is not a repository.
    public func domainNames() throws(RepositoryError) -> [String] {
        try requireRepository()
        let entries = try storeStep { () throws(StoreError) in try store.list(under: nil) }
        return entries.filter { $0.kind == .prefix && RepositoryNames.isValid($0.name) }.map(\.name).sorted()
    }

    /// The repository's identity (`repository.json`): see ``RepositoryIdentity``. Throws
    /// ``RepositoryError/Code/notARepository`` when the root is not a repository.
    public func identity() throws(RepositoryError) -> RepositoryIdentity {
        try requireRepository()
        guard let identity = try RepositoryIdentity.load(from: store) else {
            throw RepositoryError(.notARepository, "not a Pullback repository: \(root) (its repository.json vanished)")
        }
        return identity
    }

    /// The committed points of `domain`, oldest first: the prefixes of its folder that have a manifest. Partial
    /// folders are not points. Every manifest is read confined (no symbolic link followed) and validated
    /// (``BackupManifest/validate(id:domain:file:)``) before it is returned; the root must be a repository (have a
    /// `repository.json`). An unreadable domain folder is an error naming its errno, never an empty list.
    public func points(of domain: String) throws(RepositoryError) -> [BackupPoint] {
        try requireRepository()
        try RepositoryNames.checkRequested(domain, as: "domain")
        let entries = try storeStep { () throws(StoreError) in try store.list(under: RepositoryLayout.domain(domain)) }
        var points: [BackupPoint] = []
        for entry in entries
        where !entry.name.hasPrefix(".") && !entry.name.hasSuffix(RepositoryLayout.partialSuffix) {
            let pointKey = try storeStep { () throws(StoreError) in try RepositoryLayout.point(entry.name, of: domain) }
            if entry.kind == .symbolicLink {
                throw RepositoryError(
                    .corrupt,
                    "\(store.location(of: pointKey)) is a symbolic link; a repository's folders must be its own, not links to elsewhere"
                )
            }
            guard entry.kind == .prefix else { continue }
            let manifestKey = try storeStep { () throws(StoreError) in
                try pointKey.appending(RepositoryLayout.manifestName)
            }
            guard let bytes = try readSmall(manifestKey) else { continue }
            let manifestPath = store.location(of: manifestKey)
            try RepositoryNames.check(entry.name, field: "the point id (its folder)", in: manifestPath)
            let manifest = try BackupManifest.decodeValid(
                Data(bytes), from: manifestPath, id: entry.name, domain: domain)
            points.append(BackupPoint(id: entry.name, manifest: manifest, key: pointKey, in: store))
        }
        return points
    }

    /// The committed points of `domain`, oldest first, as ``points(of:)``; throws ``RepositoryError/Code/notFound``,
    /// naming the domains that have points, when it has none: a mistyped domain is an error, as in restore.
    public func requiredPoints(of domain: String) throws(RepositoryError) -> [BackupPoint] {
        let points = try points(of: domain)
        guard points.isEmpty else { return points }
        var known: [String] = []
        for name in try domainNames() where name != domain && (try? self.points(of: name))?.isEmpty == false {
            known.append(name)
        }
        throw RepositoryError(
            .notFound,
            "the repository \(root) has no backup of \(domain)"
                + (known.isEmpty ? "" : "; it has backups of: \(known.joined(separator: ", "))"))
    }

    /// The point `id` of `domain`, or the newest one for `latest`.
    public func point(_ id: String, of domain: String) throws(RepositoryError) -> BackupPoint {
        let points = try points(of: domain)
        let found = id == "latest" ? points.last : points.first { $0.id == id }
        guard let found else {
            let known = points.map(\.id).joined(separator: ", ")
            throw RepositoryError(
                .notFound,
                points.isEmpty
                    ? "the repository \(root) has no backup of \(domain)"
                    : "\(domain) has no point \(RepositoryNames.quoted(id)) in \(root); its points are: \(known)")
        }
        return found
    }

    /// Throws ``RepositoryError/Code/notARepository`` unless the root is a store with a `repository.json`: a
    /// mistyped `--repo` is named as such, not taken for an empty repository, and nothing is made. A URL is
    /// ``RepositoryError/Code/unsupportedLocation``; a root that cannot be read is an error with its cause.
    public func requireRepository() throws(RepositoryError) {
        try RepositoryLocation.check(root)
        // The identity is found through the root, so the root is a folder (or the store's own) then.
        if (try? store.kind(of: RepositoryLayout.identity())) == .object { return }
        let state = try storeStep { () throws(StoreError) in try store.rootState() }
        let initHint =
            "; check --repo, or create it with `pullback init --repo \(RepositoryLocation.shellWord(root))` (or `pullback backup --init`)"
        let why: String
        switch state {
        case .absent: why = "(nothing is there)" + initHint
        case .notAStore: why = "(it is not a folder); check --repo"
        case .empty: why = "(an empty folder)" + initHint
        case .populated: why = "(it has no \(RepositoryIdentity.fileName)); check --repo"
        }
        throw RepositoryError(.notARepository, "not a Pullback repository: \(root) \(why)")
    }

    /// The contents of the small repository object `key` (a manifest, a job record, saved XML), or nil when there
    /// is none. Read confined: a symbolic link, a FIFO, a device or a folder by that name is refused (never opened
    /// through, never blocked on), and so is an object over ``RepositoryNames/maxSmallFileSize``.
    func readSmall(_ key: ObjectKey) throws(RepositoryError) -> [UInt8]? {
        try storeStep { () throws(StoreError) in
            try store.read(key, limit: UInt64(RepositoryNames.maxSmallFileSize))
        }
    }

    /// Takes the domain's lock (see ``DomainLock``), making the domain's folder (0700) when it is not there yet. The
    /// root must be a repository already: nothing makes one but ``create(root:)``.
    public func lock(_ domain: String) throws(RepositoryError) -> DomainLock {
        try RepositoryNames.checkRequested(domain, as: "domain")
        try requireRepository()
        return try DomainLock(domain: domain, in: self)
    }
}
