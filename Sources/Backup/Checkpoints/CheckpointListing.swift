import FileIO
import Foundation
import Libvirt
import Repository
import SystemPackage

/// `pullback checkpoints DOMAIN`: the checkpoints Pullback made on a domain (named `pullback-...`), each with the
/// repository that made it and whether that repository still holds a point for it.
///
/// Each one costs guest write speed (QEMU updates its dirty bitmap on every write), and only a repository's newest
/// point's checkpoint is ever a base. Backups and prunes remove their own stale ones, but a repository deleted or moved
/// away removes nothing: this shows what is left behind. The repository's path comes from the checkpoint's description
/// (``CheckpointDescription``); it is opened read-only, and whatever is there must have the tag the checkpoint's name
/// carries to count as the checkpoint's repository.
public enum CheckpointListing {
    /// Lists `domain`'s checkpoints through `connectURI` (nil: `LIBVIRT_DEFAULT_URI`, else `qemu:///system`). The
    /// repository at `repository`, when given, must be one; the checkpoints of its tag are checked against it (those
    /// of checkpoints made before descriptions named a path say nothing), except those whose description names another
    /// folder holding a repository of the same tag, a copy: they are that one's.
    public static func run(domain: String, connectURI: String?, repository: String?) async throws(BackupError)
        -> CheckpointReport
    {
        let given = try repository.map { root throws(BackupError) in try GivenRepository.open(root) }
        let (made, others) = try await withDomain(domain, connectURI: connectURI) { domain async throws(BackupError) in
            try await read(domain)
        }
        return CheckpointReport(
            domain: domain, checkpoints: classify(made, domain: domain, given: given), others: others)
    }

    /// `pullback checkpoints DOMAIN ARGUMENTS...` with each word quoted for a shell: a command the user is told to
    /// run, which names a domain and paths that may hold anything (`$(...)`, spaces, quotes).
    public static func command(_ domain: String, _ arguments: String...) -> String {
        (["pullback", "checkpoints", domain] + arguments).map(RepositoryLocation.shellWord).joined(separator: " ")
    }

    /// A repository named on the command line: trusted, and its tag known.
    struct GivenRepository {
        var repository: BackupRepository
        var identity: RepositoryIdentity
        var path: String

        static func open(_ root: String) throws(BackupError) -> GivenRepository {
            let (repository, identity) = try CheckpointsStep.repository { () throws(RepositoryError) in
                let repository = try BackupRepository.open(root: root)
                return (repository, try repository.identity())
            }
            do throws(Errno) {
                return GivenRepository(
                    repository: repository, identity: identity, path: try CheckpointDescription.absolute(root))
            } catch {
                throw BackupError(
                    .invalidRequest,
                    "cannot read the working folder to make \(root) absolute (\(error)); give the repository's absolute path"
                )
            }
        }
    }

    /// A checkpoint of the domain whose name starts with `pullback-`, and its description.
    struct MadeCheckpoint {
        var name: String
        var description: String?
    }

    /// Opens the connection and the domain, runs `body`, and closes the connection whatever happens.
    static func withDomain<T>(
        _ name: String, connectURI: String?, _ body: (Domain) async throws(BackupError) -> T
    ) async throws(BackupError) -> T {
        let connection = try await CheckpointsStep.libvirt { () async throws(LibvirtError) in
            try await LibvirtConnection.open(uri: connectURI)
        }
        do {
            let domain = try await CheckpointsStep.libvirt { () async throws(LibvirtError) in
                try await connection.domain(named: name)
            }
            let value = try await body(domain)
            await connection.close()
            return value
        } catch {
            await connection.close()
            throw error
        }
    }

    /// The domain's checkpoints named `pullback-...` with their descriptions, parents first, and how many others it
    /// has. A description that cannot be read (the checkpoint deleted meanwhile, say) counts as none.
    static func read(_ domain: Domain) async throws(BackupError) -> (made: [MadeCheckpoint], others: Int) {
        let names = try await CheckpointsStep.libvirt { () async throws(LibvirtError) in
            try await domain.checkpointNames()
        }
        var made: [MadeCheckpoint] = []
        for name in names where CheckpointName.isPullbacks(name) {
            let description = try? await domain.checkpoint(named: name).descriptionText()
            made.append(MadeCheckpoint(name: name, description: description ?? nil))
        }
        return (made, names.count - made.count)
    }

    /// Each checkpoint with its repository and whether that repository holds a point for it; each repository is read
    /// once.
    ///
    /// The checkpoints of `given`'s tag are checked against it, except one whose description names another folder
    /// where a repository of the same tag is (or something that cannot be read): a copy of a repository keeps its id,
    /// and that checkpoint is the other one's (the base of its next backup, or of a backup running into it now).
    static func classify(_ made: [MadeCheckpoint], domain: String, given: GivenRepository?) -> [ListedCheckpoint] {
        var states: [String: RepositoryState] = [:]
        if let given {
            states[given.path] = RepositoryState.read(given.repository, identity: given.identity, domain: domain)
        }
        let state = { (path: String) -> RepositoryState in
            if let known = states[path] { return known }
            let read = RepositoryState.read(path, domain: domain)
            states[path] = read
            return read
        }
        return made.map { checkpoint in
            guard let tag = CheckpointName.tag(of: checkpoint.name) else {
                return ListedCheckpoint(
                    name: checkpoint.name, tag: nil, repository: nil, holdsPoint: .unknown,
                    detail: "its name carries no repository tag")
            }
            let described = checkpoint.description.flatMap(CheckpointDescription.repository(in:))
            var path = described.flatMap { $0.tag == tag ? $0.path : nil }
            if let given, given.identity.tag == tag {
                let elsewhere = path.map { !isSameFolder($0, given.path) && state($0).isClaimed(by: tag) } ?? false
                if !elsewhere { path = given.path }
            }
            guard let path else {
                let leftOut = checkpoint.description.map(CheckpointDescription.isPathLeftOut) ?? false
                return ListedCheckpoint(
                    name: checkpoint.name, tag: tag, repository: nil, holdsPoint: .unknown,
                    detail: leftOut
                        ? "its repository's path holds a character a checkpoint's description cannot, and was not recorded"
                        : "no repository path is recorded with it: made before Pullback recorded one, or not by Pullback"
                )
            }
            let (holding, detail) = state(path).holding(of: checkpoint.name, tag: tag)
            return ListedCheckpoint(
                name: checkpoint.name, tag: tag, repository: path, holdsPoint: holding, detail: detail)
        }
    }

    /// Whether `first` and `second` are one folder: the same path once symbolic links are resolved.
    static func isSameFolder(_ first: String, _ second: String) -> Bool {
        let real = { (path: String) in URL(fileURLWithPath: path).resolvingSymlinksInPath().standardizedFileURL.path }
        return first == second || real(first) == real(second)
    }
}

/// What a repository path holds for one domain, read once for every checkpoint naming it, read-only.
enum RepositoryState {
    /// A repository: its tag, and the checkpoints its points of the domain were made with.
    case readable(tag: String, checkpoints: Set<String>)
    /// No repository: nothing, or something else, is there.
    case gone(String)
    /// A repository that could not be read.
    case unreadable(String)

    /// Reads the repository at `path`, which may be anything (a description names it): only stat calls and confined
    /// reads of `repository.json` and the domain's manifests, never a write.
    static func read(_ path: String, domain: String) -> RepositoryState {
        let repository = BackupRepository(root: path)
        do throws(RepositoryError) {
            try repository.requireRepository()
            return read(repository, identity: try repository.identity(), domain: domain)
        } catch  where error.code == .notARepository || error.code == .unsupportedLocation {
            // A path that cannot be looked at may hold the repository: never taken for "nothing is there".
            do throws(Errno) {
                let there = try FileDescriptor.status(ofTarget: path) != nil
                return .gone(there ? "what is there is not a Pullback repository" : "nothing is there")
            } catch {
                return .unreadable("cannot look at \(path): \(error)")
            }
        } catch {
            return .unreadable(error.message)
        }
    }

    static func read(_ repository: BackupRepository, identity: RepositoryIdentity, domain: String) -> RepositoryState {
        do throws(RepositoryError) {
            let points = try repository.points(of: domain)
            return .readable(tag: identity.tag, checkpoints: Set(points.map(\.manifest.checkpoint)))
        } catch {
            return .unreadable(error.message)
        }
    }

    /// Whether a repository tagged `tag` is there, or something that cannot be read and may be one: a checkpoint
    /// whose description names it may be that repository's.
    func isClaimed(by tag: String) -> Bool {
        switch self {
        case .readable(let found, _): found == tag
        case .unreadable: true
        case .gone: false
        }
    }

    /// Whether the repository holds a point made with the checkpoint `name` of the repository tagged `tag`.
    func holding(of name: String, tag: String) -> (ListedCheckpoint.Holding, String?) {
        switch self {
        case .readable(let found, _) where found != tag:
            (.gone, "another repository (tag \(found)) is there")
        case .readable(_, let checkpoints):
            checkpoints.contains(name) ? (.yes, nil) : (.no, nil)
        case .gone(let why): (.gone, why)
        case .unreadable(let why): (.unreadable, why)
        }
    }
}
