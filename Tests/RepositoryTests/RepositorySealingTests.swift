import Foundation
import Sealing
import Storage
import TestSupport
import Testing

@testable import Repository

/// How an encrypted repository names, seals and opens its objects, below the command line: the logical names that
/// bind an object to its repository and its published place, the key check, and the key files.
@Suite struct RepositorySealingTests {
    static let id = "0f6c1b9e-4b7a-4c38-9d0e-0123456789ab"

    /// A private key file `name` in `folder` holding `bytes`.
    static func keyFile(_ bytes: [UInt8], named name: String, in folder: String) throws -> String {
        let path = folder + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        return path
    }

    static func randomBytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255) } }

    static func name(_ components: String...) throws -> String? {
        RepositorySealing.logicalName(of: try ObjectKey(components: components), repositoryID: id)
    }

    @Test func stagedFoldersAreSealedAsThePointTheyBecome() throws {
        let published = "\(Self.id)/vm/20261205T1122Z/vda.qcow2"
        for folder in [
            "20261205T1122Z", "20261205T1122Z.partial", "20261205T1122Z.rewrite.partial",
            "20261205T1122Z.rewrite.copy.partial", "20261205T1122Z.removed.partial",
        ] {
            #expect(try Self.name("vm", folder, "vda.qcow2") == published, "\(folder)")
        }
        // A point id that merely contains a suffix's word is its own name.
        #expect(
            try Self.name("vm", "20261205T1122Z-2", "manifest.json") == "\(Self.id)/vm/20261205T1122Z-2/manifest.json")
        // Job records sit beside the points, not in them.
        #expect(try Self.name("vm", ".job-1.partial.json") == "\(Self.id)/vm/.job-1.partial.json")
        #expect(try Self.name("repository.json") == nil)
        #expect(try Self.name("vm", ".lock") == nil)
    }

    @Test func hexRoundTripsAndRefusesWhatItDoesNotWrite() {
        let bytes = Self.randomBytes(33)
        #expect(Hex.decode(Hex.encode(bytes)) == bytes)
        #expect(Hex.encode([0x00, 0xab, 0xff]) == "00abff")
        for bad in ["0", "AB", "0g", "abc"] { #expect(Hex.decode(bad) == nil, "\(bad)") }
    }

    @Test func passphraseCostsOutOfBoundsAreRefusedBeforeAnythingIsAllocated() {
        #expect(PassphraseCost(logN: 15, r: 8, p: 1) == .standard)
        for (logN, r, p) in [
            (9, 8, 1), (21, 8, 1), (40, 8, 1), (15, 0, 1), (15, 33, 1), (15, 8, 0), (15, 8, 17), (20, 32, 1),
        ] {
            #expect(PassphraseCost(logN: logN, r: r, p: p) == nil, "\(logN) \(r) \(p)")
        }
    }

    @Test func anEncryptedRepositoryOpensOnlyWithItsKeyAndSealsWhatItStores() async throws {
        try await TemporaryDirectory.with("pbseal") { folder in
            let key = try Self.keyFile(Self.randomBytes(32), named: "key", in: folder)
            let other = try Self.keyFile(Self.randomBytes(32), named: "other", in: folder)
            let root = folder + "/repo"
            let made = try BackupRepository.create(root: root, keyFile: key)
            #expect(made.isEncrypted)
            let objectKey = try ObjectKey(components: ["vm", "note"])
            try made.store.write(Array("plain words".utf8), to: objectKey)
            let stored = try Data(contentsOf: URL(fileURLWithPath: root + "/vm/note"))
            #expect(stored.starts(with: Array("PBSEAL01".utf8)))
            #expect(stored.range(of: Data("plain words".utf8)) == nil)

            // Not told the key: every call says so.
            let locked = BackupRepository(root: root)
            #expect(!locked.isEncrypted)
            #expect(throws: RepositoryError.self) { try locked.domainNames() }
            do throws(RepositoryError) {
                _ = try locked.domainNames()
            } catch {
                #expect(error.code == .keyRequired && error.message.contains("--key-file"), "\(error)")
            }
            RepositoryLocation.useKeyFile(other, for: root)
            do throws(RepositoryError) {
                _ = try BackupRepository(root: root).domainNames()
                Issue.record("a wrong key opened the repository")
            } catch {
                #expect(error.code == .wrongKey && error.message.contains(other), "\(error)")
            }
            RepositoryLocation.useKeyFile(key, for: root)
            let opened = BackupRepository(root: root)
            #expect(opened.isEncrypted)
            #expect(try opened.store.read(objectKey, limit: 100) == Array("plain words".utf8))
            RepositoryLocation.useKeyFile(nil, for: root)
        }
    }

    @Test func anObjectFromAnotherRepositoryUnderTheSameKeyFailsAuthentication() async throws {
        try await TemporaryDirectory.with("pbseal") { folder in
            let key = try Self.keyFile(Self.randomBytes(32), named: "key", in: folder)
            let first = try BackupRepository.create(root: folder + "/a", keyFile: key)
            let second = try BackupRepository.create(root: folder + "/b", keyFile: key)
            let objectKey = try ObjectKey(components: ["vm", "note"])
            try first.store.write(Array("from a".utf8), to: objectKey)
            try second.store.write(Array("from b".utf8), to: objectKey)
            try FileManager.default.removeItem(atPath: folder + "/b/vm/note")
            try FileManager.default.copyItem(atPath: folder + "/a/vm/note", toPath: folder + "/b/vm/note")
            do throws(StoreError) {
                _ = try second.store.read(objectKey, limit: 100)
                Issue.record("an object of another repository was read")
            } catch {
                #expect(error.message.contains("fails authentication"), "\(error)")
            }
        }
    }

    @Test func keyFilesMustBePrivateAndHoldAKeyOrAPassphrase() async throws {
        try await TemporaryDirectory.with("pbseal") { folder in
            let open = try Self.keyFile(Self.randomBytes(32), named: "open", in: folder)
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: open)
            let short = try Self.keyFile(Array("short\n".utf8), named: "short", in: folder)
            let text32 = try Self.keyFile(Array(String(repeating: "a", count: 32).utf8), named: "text32", in: folder)
            let big = try Self.keyFile(Array(repeating: 0x61, count: 5000), named: "big", in: folder)
            for (path, words) in [
                (open, "chmod 600"), (short, "at least 8"), (big, "more than"), (folder + "/none", "does not exist"),
                (folder, "not a regular file"),
            ] {
                do throws(RepositoryError) {
                    _ = try RepositoryKeyFile.read(path)
                    Issue.record("\(path) was taken as a key file")
                } catch {
                    #expect(error.code == .keyFile && error.message.contains(words), "\(error)")
                }
            }
            // 32 bytes of text are a passphrase, not a raw key.
            guard case .passphrase(let words) = try RepositoryKeyFile.read(text32) else {
                Issue.record("32 bytes of text taken for a raw key")
                return
            }
            #expect(words.count == 32)
            // A refused key file makes nothing.
            #expect(throws: RepositoryError.self) {
                try BackupRepository.create(root: folder + "/none-made", keyFile: short)
            }
            #expect(!FileManager.default.fileExists(atPath: folder + "/none-made"))
        }
    }
}
