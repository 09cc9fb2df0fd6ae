import Foundation
import Testing

extension CopyIntegration {
    /// Copy targets and restored images hold a disk's data: they are created 0600 whatever the umask, and a target
    /// replaced with `--overwrite` keeps the mode it had.
    @Suite("Modes of targets and restored images", .serialized)
    struct PrivateTargetTests {
        /// Runs `command` with a umask of 022, the common default that leaves new files world-readable.
        static func withUmask022(_ command: [String]) -> [String] {
            ["sh", "-c", "umask 022 && exec \"$0\" \"$@\""] + command
        }

        static func mode(_ path: String) throws -> Int {
            Int(try #require(FileFacts.mode(path), "nothing at \(path)"))
        }

        static func expectMode(
            _ path: String, _ expected: Int, sourceLocation: SourceLocation = #_sourceLocation
        ) throws {
            let actual = try mode(path)
            #expect(
                actual == expected, "\(path) is \(String(actual, radix: 8)), not \(String(expected, radix: 8))",
                sourceLocation: sourceLocation)
        }

        @Test(
            "copy targets are 0600 under umask 022; --overwrite keeps a 0640 target 0640; a planted link is not followed",
            .timeLimit(.minutes(2)))
        func copyTargets() async throws {
            try await Fixture.run { fx in
                let server = try await NBDServer.nbdkit(fx, ["pattern", "size=3M"])
                let binary = try Pullback.binaryPath()
                func copy(_ arguments: [String]) async throws {
                    try requireSuccess(try await fx.run(Self.withUmask022([binary, "copy"] + arguments)))
                }
                let raw = fx.target("a.raw")
                let qcow2 = fx.target("a.qcow2")
                try await copy([server.uri(), raw])
                try await copy(["--format", "qcow2", server.uri(), qcow2])
                try Self.expectMode(raw, 0o600)
                try Self.expectMode(qcow2, 0o600)

                for target in [raw, qcow2] {
                    try FileManager.default.setAttributes([.posixPermissions: 0o640], ofItemAtPath: target)
                }
                try await copy(["--overwrite", server.uri(), raw])
                try await copy(["--overwrite", "--format", "qcow2", server.uri(), qcow2])
                try Self.expectMode(raw, 0o640)
                try Self.expectMode(qcow2, 0o640)

                // A link planted at the temporary name must not send the copy (or a chmod) to what it points at.
                let victim = fx.path("victim")
                try FileFacts.create(victim, with: Data("keep me".utf8))
                try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: victim)
                let linked = fx.target("b.raw")
                try FileManager.default.createSymbolicLink(
                    atPath: Pullback.partialPath(for: linked), withDestinationPath: victim)
                try await copy([server.uri(), linked])
                #expect(try FileFacts.contents(victim) == Data("keep me".utf8))
                try Self.expectMode(victim, 0o644)
                try Self.expectMode(linked, 0o600)
                expectNoCopyLeft(at: linked, targetExistedBefore: true)
            }
        }

        @Test("restored images are 0600 under umask 022, qcow2 and raw", .timeLimit(.minutes(3)))
        func restoredImages() async throws {
            try await LibvirtGuest.run(disks: [("vda", 16 * mib)]) { fx, guest in
                try await guest.write("vda", "write -P 0x6d 0 1M")
                _ = try await BackupTests.backup(guest)
                let binary = try Pullback.binaryPath()
                for format in ["qcow2", "raw"] {
                    let folder = fx.target("restored-\(format)")
                    let restore = try await fx.run(
                        Self.withUmask022([
                            binary, "restore", "--repo", guest.repo, guest.name, "--to", folder, "--format", format,
                        ]))
                    try requireSuccess(restore)
                    try Self.expectMode("\(folder)/vda.\(format)", 0o600)
                }
            }
        }
    }
}
