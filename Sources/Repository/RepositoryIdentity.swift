import FileIO
import Foundation
import SystemPackage

/// Who a repository is: a random id kept in `<root>/repository.json`, made with the repository
/// (``BackupRepository/create(root:)``, `pullback init`). The checkpoints a repository creates carry its ``tag`` in
/// their names, so it recognises its own checkpoints and leaves alone those of another repository backing up the same
/// domain, or of another tool. The file moves and is copied with the repository, and so does the identity.
public struct RepositoryIdentity: Codable, Sendable, Equatable {
    public static let fileName = "repository.json"
    static let schemaVersion = 1

    public var schema: Int
    /// A UUID, in lower case.
    public var id: String

    /// The first 8 hex digits of the id: short enough for a checkpoint name, and two repositories of the same
    /// domain differ in it but once in four billion.
    public var tag: String { String(id.filter(\.isHexDigit).prefix(8)) }

    /// The identity of the repository at `root`, or nil when it has none (it is not a repository).
    static func load(root: String) throws(RepositoryError) -> RepositoryIdentity? {
        try load(root + "/" + fileName)
    }

    /// Gives the folder `root`, which must exist, a new identity: it is a repository from then on. Of two processes
    /// making one at once, one wins and the other fails with ``RepositoryError/Code/alreadyARepository``: the file
    /// appears by `link`, which fails if the other was first.
    static func create(root: String) throws(RepositoryError) -> RepositoryIdentity {
        let path = root + "/" + fileName
        let made = RepositoryIdentity(schema: schemaVersion, id: UUID().uuidString.lowercased())
        let temporary = root + "/.\(fileName).\(made.id).tmp"
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let bytes: [UInt8]
        do {
            bytes = Array(try encoder.encode(made)) + [0x0a]
        } catch {
            throw RepositoryError(.io, "cannot encode the repository identity: \(error)")
        }
        try FileSync.writeDurably(bytes, to: temporary)
        defer { try? FilePaths.remove(temporary) }
        do throws(Errno) {
            try FilePaths.link(temporary, as: path)
        } catch  where error == .fileExists {
            throw RepositoryError(.alreadyARepository, "\(root) is a Pullback repository already")
        } catch {
            throw RepositoryError(failed: "create", path, error)
        }
        try FileSync.syncFolder(root)
        return made
    }

    private static func load(_ path: String) throws(RepositoryError) -> RepositoryIdentity? {
        guard let bytes = try FileSync.readSmallFile(path) else { return nil }
        let data = Data(bytes)
        let identity: RepositoryIdentity
        do {
            identity = try JSONDecoder().decode(RepositoryIdentity.self, from: data)
        } catch {
            throw RepositoryError(
                .corrupt, "\(path) is not a repository identity (\(error)); restore it from a copy of the repository")
        }
        guard identity.schema == schemaVersion, identity.tag.count == 8 else {
            throw RepositoryError(
                .corrupt,
                "\(path) has schema \(identity.schema) or a malformed id; this pullback reads schema \(schemaVersion)")
        }
        return identity
    }
}
