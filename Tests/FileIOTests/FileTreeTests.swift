import Foundation
import SystemPackage
import TestSupport
import Testing

@testable import FileIO

#if canImport(Glibc)
    import Glibc
#endif

/// ``FileTree``: trees removed through descriptors, on real files in a folder of each test's own. Each removal runs
/// twice over, trusting the types listings report and asking `fstatat` for every entry (as on a file system that
/// reports DT_UNKNOWN).
@Suite("FileIO: tree removal through descriptors", .serialized)
struct FileTreeTests {
    /// A fresh folder holding `tree/` (to be removed) and `outside/` (to survive), both with files; `body` gets
    /// the fixture's path and a descriptor of it.
    func withFolder(_ body: (String, FileDescriptor) async throws -> Void) async throws {
        try await TemporaryDirectory.with("filetree") { folder in
            try FileManager.default.createDirectory(atPath: folder + "/outside/sub", withIntermediateDirectories: true)
            for name in ["a", "b", "sub/c"] { try write(folder + "/outside/" + name) }
            let descriptor = try FileDescriptor.open(path: folder, .readOnly, options: .directory)
            defer { descriptor.closeAfterUse() }
            try await body(folder, descriptor)
        }
    }

    /// A file holding `data`.
    func write(_ path: String) throws { try FileFacts.create(path, with: Data("data".utf8)) }

    /// Every name under `folder`, not following links.
    func names(under folder: String) -> [String] {
        (FileManager.default.enumerator(atPath: folder)?.compactMap { $0 as? String } ?? []).sorted()
    }

    func exists(_ path: String) -> Bool { FilePaths.exists(path) }

    /// The descriptors this process has open on anything under `folder` (removed or not). Other tests running
    /// meanwhile open and close descriptors of their own, so all of them are not counted.
    func descriptors(under folder: String) throws -> Int {
        try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count { number in
            let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + number)
            return target?.hasPrefix(folder + "/") ?? false
        }
    }

    /// Makes `depth` nested folders `d/d/d...` under `folder`, each holding a file, through descriptors (a path that
    /// deep may be longer than a path can be).
    func nest(_ depth: Int, under folder: String) throws {
        var current = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard current >= 0 else { throw HarnessError("open \(folder): \(errno)") }
        for _ in 0..<depth {
            guard mkdirat(current, "d", 0o700) == 0 else { throw HarnessError("mkdirat: \(errno)") }
            let file = openat(current, "f", O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
            guard file >= 0 else { throw HarnessError("openat f: \(errno)") }
            close(file)
            let next = openat(current, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            close(current)
            guard next >= 0 else { throw HarnessError("openat d: \(errno)") }
            current = next
        }
        close(current)
    }

    @Test(
        "a tree of folders, files and links is removed, and what its links point to is not", arguments: [false, true])
    func treeWithLinks(askingTypes: Bool) async throws {
        try await withFolder { root, descriptor in
            let tree = root + "/tree"
            try FileManager.default.createDirectory(atPath: tree + "/x/y/z", withIntermediateDirectories: true)
            for index in 0..<300 { try write(tree + "/x/file\(index)") }
            try write(tree + "/x/y/z/deep")
            try write(tree + "/top")
            // Links to the outside folder, to one of its files, to one inside it, and to nothing.
            try FileManager.default.createSymbolicLink(atPath: tree + "/out", withDestinationPath: root + "/outside")
            try FileManager.default.createSymbolicLink(
                atPath: tree + "/x/y/out", withDestinationPath: "../../../outside")
            try FileManager.default.createSymbolicLink(atPath: tree + "/x/a", withDestinationPath: root + "/outside/a")
            try FileManager.default.createSymbolicLink(
                atPath: tree + "/x/y/z/none", withDestinationPath: "/nonexistent")
            #expect(mkfifo(tree + "/x/fifo", 0o600) == 0)

            try FileTree.remove(named: EntryName("tree"), in: descriptor, askingTypes: askingTypes)

            #expect(!exists(tree))
            #expect(names(under: root + "/outside") == ["a", "b", "sub", "sub/c"])
        }
    }

    @Test(
        "a link to a folder outside loses its name only; nothing by the name is nothing to do",
        arguments: [false, true])
    func topLevelLinkAndAbsence(askingTypes: Bool) async throws {
        try await withFolder { root, descriptor in
            try FileManager.default.createSymbolicLink(atPath: root + "/tree", withDestinationPath: root + "/outside")
            try FileTree.remove(named: EntryName("tree"), in: descriptor, askingTypes: askingTypes)
            #expect(!exists(root + "/tree"))
            #expect(names(under: root + "/outside") == ["a", "b", "sub", "sub/c"])

            try FileTree.remove(named: EntryName("tree"), in: descriptor, askingTypes: askingTypes)
            try FileTree.remove(atPath: root + "/absent/tree")

            try write(root + "/file")
            try FileTree.remove(atPath: root + "/file")
            #expect(!exists(root + "/file"))
        }
    }

    @Test("names that are not UTF-8 are removed as the bytes they are", arguments: [false, true])
    func namesThatAreNotUTF8(askingTypes: Bool) async throws {
        try await withFolder { root, descriptor in
            try FileManager.default.createDirectory(atPath: root + "/tree", withIntermediateDirectories: false)
            let folder = open(root + "/tree", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            #expect(folder >= 0)
            defer { close(folder) }
            // "\xff\xfe" and "caf\xe9": both would be repaired to U+FFFD as Strings, and name nothing.
            for bytes: [CChar] in [[-1, -2, 0], [0x63, 0x61, 0x66, -23, 0]] {
                #expect(mkdirat(folder, bytes, 0o700) == 0)
                let sub = openat(folder, bytes, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                let file = openat(sub, bytes, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
                #expect(sub >= 0 && file >= 0)
                close(file)
                close(sub)
            }
            try FileTree.remove(named: EntryName("tree"), in: descriptor, askingTypes: askingTypes)
            #expect(!exists(root + "/tree"))
        }
    }

    @Test("a deep tree is removed", arguments: [false, true])
    func deepTree(askingTypes: Bool) async throws {
        try await withFolder { root, descriptor in
            try FileManager.default.createDirectory(atPath: root + "/tree", withIntermediateDirectories: false)
            try nest(FileTree.maximumDepth - 1, under: root + "/tree")
            try FileTree.remove(named: EntryName("tree"), in: descriptor, askingTypes: askingTypes)
            #expect(!exists(root + "/tree"))
        }
    }

    @Test("a tree deeper than the bound fails with an error, keeps what is below the bound, and leaks no descriptor")
    func tooDeep() async throws {
        try await withFolder { root, descriptor in
            try FileManager.default.createDirectory(atPath: root + "/tree", withIntermediateDirectories: false)
            try nest(FileTree.maximumDepth + 50, under: root + "/tree")
            let error = #expect(throws: FileTreeError.self) { try FileTree.remove(named: "tree", in: descriptor) }
            #expect(error?.reason == .tooDeep, "\(String(describing: error))")
            #expect(try descriptors(under: root) == 0)
            #expect(exists(root + "/tree"))
            // Much deeper still: no recursion to run out of stack, no descriptor per level to run out of.
            try nest(10_000, under: root + "/outside/sub")
            let deeper = #expect(throws: FileTreeError.self) { try FileTree.remove(atPath: root + "/outside/sub") }
            #expect(deeper?.reason == .tooDeep, "\(String(describing: deeper))")
            #expect(try descriptors(under: root) == 0)
            // A tool without a bound removes what is left; FileManager cannot, as the paths are too long.
            let removal = try await ChildProcess.run(
                ["rm", "-rf", root + "/tree", root + "/outside/sub"], timeout: .seconds(60))
            #expect(removal.succeeded, "\(removal)")
        }
    }

    @Test("removals open no descriptor that outlives them")
    func noDescriptorLeak() async throws {
        try await withFolder { root, descriptor in
            for round in 0..<20 {
                try FileManager.default.createDirectory(atPath: root + "/tree/x/y", withIntermediateDirectories: true)
                try write(root + "/tree/x/y/f")
                try FileManager.default.createSymbolicLink(atPath: root + "/tree/l", withDestinationPath: root)
                if round.isMultiple(of: 2) {
                    try FileTree.remove(named: "tree", in: descriptor)
                } else {
                    try FileTree.remove(atPath: root + "/tree")
                }
                #expect(!exists(root + "/tree"))
            }
            #expect(try descriptors(under: root) == 0)
        }
    }
}
