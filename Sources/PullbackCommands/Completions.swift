import ArgumentParser
import Backup
import Foundation
import Repository

/// What a shell offers on TAB for the values only pullback knows: libvirt's domains, a repository's domains and its
/// points. The completion scripts (`pullback --generate-completion-script bash|zsh|fish`) ask `pullback` itself for
/// them at every TAB, so they read the least they can, print nothing but the candidates, and offer nothing when
/// anything fails (no libvirt, no repository yet, a half-typed path). Every candidate passes
/// ``CompletionCandidates``: bash expands what it is offered, so a name that is not plainly a name is not offered.
extension CompletionKind {
    /// The domains of libvirt, through the `--connect` URI already on the command line, else the default one; nothing
    /// through a transport that may prompt or run a program, nor when libvirt does not answer in 2 seconds.
    static var libvirtDomain: CompletionKind {
        .custom { words, index, _ async in
            let uri = CommandLineWords.value(of: "--connect", in: words, before: index)
            return await DomainListing.completionNames(connectURI: uri)
        }
    }

    /// The domains with a folder in the repository of the command line's `--repo`.
    static var repositoryDomain: CompletionKind {
        .custom { words, index, _ in
            guard let root = CommandLineWords.value(of: "--repo", in: words, before: index) else { return [] }
            return CompletionCandidates.offerable((try? BackupRepository(root: root).domainNames()) ?? [])
        }
    }

    /// `latest` and the point ids of the command line's domain in its `--repo` (of every domain there when no
    /// domain is given yet).
    static var point: CompletionKind { points(also: ["latest"]) }

    /// As ``point``, and `all`: `verify --at` checks every point with it.
    static var pointOrAll: CompletionKind { points(also: ["latest", "all"]) }

    private static func points(also words: [String]) -> CompletionKind {
        .custom { line, index, _ in
            CompletionCandidates.offerable(words + CommandLineWords.pointIDs(in: line, before: index))
        }
    }
}

/// The words of a command line as the shell passes them to a completion, verbatim (quotes and escapes included).
enum CommandLineWords {
    /// The value given to `option` (`--repo DIR` or `--repo=DIR`) in `words`, the last one if repeated, ignoring the
    /// word at `index`, which is being typed; unquoted as the shell would, `~/` expanded.
    static func value(of option: String, in words: [String], before index: Int) -> String? {
        var found: String?
        for (position, word) in words.enumerated() where position != index {
            if word == option, position + 1 < words.count, position + 1 != index {
                found = words[position + 1]
            } else if word.hasPrefix(option + "=") {
                found = String(word.dropFirst(option.count + 1))
            }
        }
        return found.map(unquoted).map(expandingHome)
    }

    /// The point ids of the first domain named in `words` among those of the `--repo` in `words`; of every domain's
    /// points when none is named. Sorted, oldest first per domain.
    static func pointIDs(in words: [String], before index: Int) -> [String] {
        guard let root = value(of: "--repo", in: words, before: index) else { return [] }
        let repository = BackupRepository(root: root)
        guard let domains = try? repository.domainNames() else { return [] }
        let typed = Set(words.enumerated().filter { $0.offset != index }.map { unquoted($0.element) })
        let chosen = domains.first(where: typed.contains).map { [$0] } ?? domains
        return chosen.flatMap { domain in ((try? repository.points(of: domain)) ?? []).map(\.id) }
    }

    /// `word` as the shell reads it: single quotes keep everything, double quotes and a backslash escape.
    static func unquoted(_ word: String) -> String {
        var result = ""
        var quote: Character?
        var escaped = false
        for character in word {
            if escaped {
                result.append(character)
                escaped = false
            } else if character == "\\" && quote != "'" {
                escaped = true
            } else if let open = quote, character == open {
                quote = nil
            } else if quote == nil && (character == "'" || character == "\"") {
                quote = character
            } else {
                result.append(character)
            }
        }
        return result
    }

    private static func expandingHome(_ path: String) -> String {
        guard path == "~" || path.hasPrefix("~/"), let home = ProcessInfo.processInfo.environment["HOME"] else {
            return path
        }
        return home + path.dropFirst()
    }
}
