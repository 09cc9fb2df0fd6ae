import Foundation
import Storage

/// Who a repository is: a random id kept in `<root>/repository.json`, made with the repository
/// (``BackupRepository/create(root:)``, `pullback init`). The checkpoints a repository creates carry its ``tag`` in
/// their names, so it recognises its own checkpoints and leaves alone those of another repository backing up the same
/// domain, or of another tool. The file moves and is copied with the repository, and so does the identity.
public struct RepositoryIdentity: Codable, Sendable, Equatable {
    public static let fileName = RepositoryLayout.identityName
    static let schemaVersion = 1
    /// The schema of an encrypted repository's identity: a pullback that reads only schema 1 refuses the repository
    /// rather than taking its sealed objects for damaged plain ones.
    static let encryptedSchemaVersion = 2

    public var schema: Int
    /// A UUID, in lower case.
    public var id: String
    /// How the repository's objects are sealed; nil for a plain repository.
    public var encryption: RepositoryEncryption?

    /// The first 8 hex digits of the id: short enough for a checkpoint name, and two repositories of the same
    /// domain differ in it but once in four billion.
    public var tag: String { String(id.filter(\.isHexDigit).prefix(8)) }

    /// Gives the store, which must exist, a new identity: it is a repository from then on. Of two processes making
    /// one at once, one wins and the other fails with ``RepositoryError/Code/alreadyARepository``: the identity is a
    /// new object, which is never made over an existing one.
    static func create(in store: any ObjectStore, encryption: RepositoryEncryption? = nil) throws(RepositoryError)
        -> RepositoryIdentity
    {
        let made = RepositoryIdentity(
            schema: encryption == nil ? schemaVersion : encryptedSchemaVersion, id: UUID().uuidString.lowercased(),
            encryption: encryption)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let bytes: [UInt8]
        do {
            bytes = Array(try encoder.encode(made)) + [0x0a]
        } catch {
            throw RepositoryError(.io, "cannot encode the repository identity: \(error)")
        }
        do throws(StoreError) {
            try store.write(bytes, to: RepositoryLayout.identity())
        } catch  where error.code == .alreadyExists {
            throw RepositoryError(.alreadyARepository, "\(store.location(of: nil)) is a Pullback repository already")
        } catch {
            throw RepositoryError(error)
        }
        return made
    }

    /// The identity of the repository in `store`, or nil when it has none (it is not a repository).
    static func load(from store: any ObjectStore) throws(RepositoryError) -> RepositoryIdentity? {
        let key = try storeStep { () throws(StoreError) in try RepositoryLayout.identity() }
        let path = store.location(of: key)
        let read = try storeStep { () throws(StoreError) in
            try store.read(key, limit: UInt64(RepositoryNames.maxSmallFileSize))
        }
        guard let bytes = read else { return nil }
        let identity: RepositoryIdentity
        do {
            identity = try JSONDecoder().decode(RepositoryIdentity.self, from: Data(bytes))
        } catch {
            throw RepositoryError(
                .corrupt, "\(path) is not a repository identity (\(error)); restore it from a copy of the repository")
        }
        let schema = identity.encryption == nil ? schemaVersion : encryptedSchemaVersion
        guard identity.schema == schema, identity.tag.count == 8 else {
            throw RepositoryError(
                .corrupt,
                "\(path) has schema \(identity.schema) or a malformed id; this pullback reads schema \(schemaVersion), "
                    + "and \(encryptedSchemaVersion) with an encryption description")
        }
        try identity.encryption?.validate(in: path)
        return identity
    }
}
