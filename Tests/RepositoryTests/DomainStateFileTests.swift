import Foundation
import Repository
import Testing

/// A manifest's state entries are untrusted like the rest of it: only the names a point may hold, sizes within bounds,
/// whole-file digests.
@Suite struct DomainStateFileTests {
    static let digest = "sha256:" + String(repeating: "ab", count: 32)

    static func manifest(state: [DomainStateFile]) -> BackupManifest {
        var manifest = BackupManifest(
            domainName: "uefi", domainUUID: "7f1c2d4e-1111-2222-3333-444455556666", level: .full, checkpoint: "cp1",
            parent: nil, started: Date(timeIntervalSince1970: 0), finished: Date(timeIntervalSince1970: 1),
            disks: [.init(target: "vda", virtualSize: 1 << 20, image: "vda.qcow2", backingImage: nil, bytesCopied: 0)])
        manifest.state = state
        return manifest
    }

    static func refusal(_ state: [DomainStateFile]) -> String? {
        do {
            try manifest(state: state).validate(id: "20270101T000000Z", domain: "uefi", file: "manifest.json")
            return nil
        } catch {
            return error.message
        }
    }

    @Test func genuineEntriesPassAndTheirDigestIsSha256sums() {
        let bytes: [UInt8] = Array("abc".utf8)
        let entry = DomainStateFile(kind: .nvram, file: "nvram.fd", bytes: bytes)
        #expect(entry.digest == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(entry.size == 3)
        let tpm = DomainStateFile(kind: .tpm, file: "tpm2-00.permall", size: 6104, digest: Self.digest)
        #expect(Self.refusal([entry, tpm]) == nil)
        #expect(DomainStateFile.tpmFolder(of: "tpm2-00.permall") == "tpm2")
        #expect(DomainStateFile.tpmFolder(of: "tpm-00.permall") == "tpm1.2")
    }

    @Test(arguments: [
        DomainStateFile(kind: .nvram, file: "vda.qcow2", size: 1, digest: digest),
        DomainStateFile(kind: .nvram, file: "../nvram.fd", size: 1, digest: digest),
        DomainStateFile(kind: .tpm, file: "manifest.json", size: 1, digest: digest),
        DomainStateFile(kind: .tpm, file: "tpm2-00.permall/../x", size: 1, digest: digest),
        DomainStateFile(kind: .tpm, file: "tpm2-0.permall", size: 1, digest: digest),
        DomainStateFile(kind: .tpm, file: ".lock", size: 1, digest: digest),
        DomainStateFile(kind: .nvram, file: "nvram.fd", size: UInt64.max, digest: digest),
        DomainStateFile(kind: .nvram, file: "nvram.fd", size: 1, digest: "sha256-split:512:aa:bb"),
        DomainStateFile(kind: .nvram, file: "nvram.fd", size: 1, digest: "sha256:ABC"),
    ])
    func entriesNamingAnythingElseAreRefused(entry: DomainStateFile) {
        let message = Self.refusal([entry])
        #expect(message?.contains("state[0].") == true && message?.contains("\n") == false, "\(message ?? "accepted")")
    }

    @Test func aFileNamedTwiceOrTooManyFilesAreRefused() {
        let nvram = DomainStateFile(kind: .nvram, file: "nvram.fd", size: 1, digest: Self.digest)
        #expect(Self.refusal([nvram, nvram])?.contains("appears twice") == true)
        let many = (0..<9).map {
            DomainStateFile(kind: .tpm, file: "tpm2-0\($0).permall", size: 1, digest: Self.digest)
        }
        #expect(Self.refusal(many)?.contains("at most 8") == true)
    }
}
