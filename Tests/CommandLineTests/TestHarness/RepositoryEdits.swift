import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Hand edits of a repository made by a real backup, as a hostile or careless user would make them, and what tests
/// check afterwards: modes, leaks of host file content into output.
enum RepositoryEdits {
    /// Rewrites the JSON object in `path` through `edit`.
    static func editJSON(_ path: String, _ edit: (inout [String: Any]) -> Void) throws {
        var object = try #require(try JSONSerialization.jsonObject(with: FileFacts.contents(path)) as? [String: Any])
        edit(&object)
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        try data.write(to: URL(fileURLWithPath: path))
    }

    /// Sets `key` of disk `index` in the manifest at `path`.
    static func editDisk(_ path: String, _ index: Int = 0, _ key: String, _ value: Any) throws {
        try editJSON(path) { object in
            var disks = object["disks"] as? [[String: Any]] ?? []
            disks[index][key] = value
            object["disks"] = disks
        }
    }

    /// A copy of the repository `source` at `destination` (`cp -a`: modes and links as they are).
    static func copy(_ fx: Fixture, _ source: String, to destination: String) async throws {
        _ = try await fx.runChecked(["cp", "-a", source, destination])
    }

    /// Every name under `root` (not following links) with its type letter (`f`, `d`, `l`, `p`...) and mode bits.
    static func modes(under root: String) -> [(path: String, type: Character, mode: UInt32)] {
        guard let walker = FileManager.default.enumerator(atPath: root) else { return [] }
        return walker.compactMap { $0 as? String }.sorted().compactMap { relative in
            var info = Glibc.stat()
            guard lstat(root + "/" + relative, &info) == 0 else { return nil }
            let type: Character =
                switch info.st_mode & S_IFMT {
                case S_IFREG: "f"
                case S_IFDIR: "d"
                case S_IFLNK: "l"
                case S_IFIFO: "p"
                default: "?"
                }
            return (relative, type, UInt32(info.st_mode & 0o7777))
        }
    }

    /// Runs pullback with `arguments` under umask `mask` (a shell sets it, then execs pullback).
    static func pullback(_ fx: Fixture, umask mask: String, _ arguments: [String]) async throws -> CommandResult {
        try await fx.run(
            ["/bin/sh", "-c", "umask \(mask) && exec \"$0\" \"$@\"", try Pullback.binaryPath()] + arguments)
    }

    /// No output of `result` carries `secret` (a marker written into a host file outside the repository).
    static func expectNoLeak(
        _ result: CommandResult, of secret: String, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(
            !result.stdout.contains(secret) && !result.stderr.contains(secret),
            "host file content in the output: \(result)", sourceLocation: sourceLocation)
    }
}
