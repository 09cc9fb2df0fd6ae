import Foundation
import Testing

extension BackupIntegration.EncryptedRepositoryDamageTests {
    /// `pullback ARGUMENTS` with `PULLBACK_KEY_FILE` unset unless `environment` (`NAME=VALUE` entries) sets it, so that
    /// a key from the test's own environment never stands in for a missing one.
    static func pullback(
        _ fx: Fixture, _ arguments: [String], environment: [String] = [], timeout: Duration = .seconds(60)
    ) async throws -> CommandResult {
        try await fx.run(
            ["env", "-u", "PULLBACK_KEY_FILE"] + environment + [try Pullback.binaryPath()] + arguments,
            timeout: timeout)
    }

    /// A successful backup of the guest into the encrypted `repo`, decoded.
    static func backup(
        _ guest: LibvirtGuest, repo: String, key: String, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> BackupSummary {
        let result = try await pullback(
            guest.fx, ["backup", guest.name, "--repo", repo, "--connect", guest.uri, "--json", "--key-file", key],
            timeout: .seconds(120))
        try requireSuccess(result, sourceLocation: sourceLocation)
        return try BackupSummary.decode(result)
    }

    /// A key file `name` in the fixture holding `content`, private (0600) unless `mode` says otherwise.
    static func keyFile(_ fx: Fixture, _ name: String, _ content: Data, mode: Int = 0o600) throws -> String {
        let path = fx.path(name)
        try FileFacts.create(path, with: content)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        return path
    }

    /// A raw key file: 32 random bytes, the first a NUL so that they are never all printable text.
    static func rawKey(_ fx: Fixture, _ name: String, mode: Int = 0o600) throws -> String {
        var bytes = (0..<32).map { _ in UInt8.random(in: 0...255) }
        bytes[0] = 0
        return try keyFile(fx, name, Data(bytes), mode: mode)
    }

    /// The names under `repo` with their types, and the sha256 of every file in it: equal before and after a command
    /// that changed nothing.
    static func fingerprint(_ fx: Fixture, _ repo: String) async throws -> String {
        let script = """
            cd "$0" && find . -printf '%y %p\\n' | LC_ALL=C sort && \
            find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
            """
        return try await fx.runChecked(["sh", "-c", script, repo]).stdout
    }

    // MARK: damage to sealed objects

    /// Flips every bit of the byte at `offset`.
    static func flipByte(_ path: String, at offset: UInt64) throws {
        let byte = try FileFacts.bytes(path, at: offset, count: 1)
        try FileFacts.overwrite(path, at: offset, with: Data([byte[0] ^ 0xff]))
    }

    /// Swaps the sealed frames `first` and `second` (both full frames, so of the same length).
    static func swapFrames(_ path: String, _ first: UInt64, _ second: UInt64) throws {
        let one = try FileFacts.bytes(path, at: frameOffset(first), count: Int(sealedFrameSize))
        let other = try FileFacts.bytes(path, at: frameOffset(second), count: Int(sealedFrameSize))
        try #require(one.count == Int(sealedFrameSize) && other.count == Int(sealedFrameSize))
        try FileFacts.overwrite(path, at: frameOffset(first), with: other)
        try FileFacts.overwrite(path, at: frameOffset(second), with: one)
    }

    /// Copies the sealed frame `index` of `source` over the frame at the same position of `target`.
    static func copyFrame(_ index: UInt64, from source: String, to target: String) throws {
        let frame = try FileFacts.bytes(source, at: frameOffset(index), count: Int(sealedFrameSize))
        try #require(frame.count == Int(sealedFrameSize))
        try #require(frame != (try FileFacts.bytes(target, at: frameOffset(index), count: Int(sealedFrameSize))))
        try FileFacts.overwrite(target, at: frameOffset(index), with: frame)
    }

    /// Cuts `path` to `size` bytes.
    static func truncate(_ path: String, to size: UInt64) throws {
        let handle = try #require(FileHandle(forWritingAtPath: path))
        defer { try? handle.close() }
        try handle.truncate(atOffset: size)
    }
}
