import Foundation
import Repository
import TestSupport
import Testing

/// A bounded fuzz run over manifest JSON: random edits of a genuine manifest (bytes flipped, cut, repeated; values
/// replaced by hostile ones: paths that climb, NULs, escapes, huge and negative numbers, wrong types) go through the
/// validator every reader uses. Nothing traps, every rejection is a one-line `RepositoryError` without raw control
/// characters, and whatever is accepted names nothing outside its point.
@Suite struct ManifestFuzzTests {
    static let id = "20270115T080000Z"
    static let parent = "20270114T080000Z"
    static let file = "/repo/web1/\(id)/manifest.json"

    /// A manifest as a backup commits it: incremental, two disks, digests.
    static func genuine() throws -> Data {
        let digest = "sha256:" + String(repeating: "0123456789abcdef", count: 4)
        let manifest = BackupManifest(
            domainName: "web1", domainUUID: "5f1c3e0a-0000-4000-8000-000000000001", level: .incremental,
            checkpoint: "pullback-1a2b3c4d-\(id)", parent: parent, started: Date(timeIntervalSince1970: 1_800_000_000),
            finished: Date(timeIntervalSince1970: 1_800_000_060),
            disks: [
                .init(
                    target: "vda", virtualSize: 1 << 30, image: "vda.qcow2", backingImage: "../\(parent)/vda.qcow2",
                    bytesCopied: 4096, imageDigest: digest),
                .init(
                    target: "vdb", virtualSize: 1 << 25, image: "vdb.qcow2", backingImage: nil, bytesCopied: 1 << 25,
                    imageDigest: digest),
            ])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return try encoder.encode(manifest)
    }

    static var hostileValues: [Any] {
        [
            "../../../outside.qcow2", "../escaped", "/etc/shadow", "vda\u{0}.qcow2", "\u{1b}[2J\u{1b}]0;owned\u{07}",
            "",
            ".", "..", ".lock", "a/b", String(repeating: "a", count: 5000), "vda.qcow2", "../\(parent)/vda.qcow2",
            "../\(parent)/vdb.qcow2", "../other/vda.qcow2", parent, id, "web2",
            "sha256:" + String(repeating: "F", count: 64),
            "sha256:" + String(repeating: "0", count: 63), UInt64.max, Int64.min, -1, 0, 1 << 63, (1 << 63) + 1,
            1e300, 3.5, true, NSNull(), [Any](), [String: Any](), 2, "full", "incremental", "latest",
        ]
    }

    static let fieldKeys = [
        "schemaVersion", "domainName", "domainUUID", "level", "checkpoint", "parent", "started", "finished", "disks",
        "target", "virtualSize", "image", "backingImage", "bytesCopied", "imageDigest",
    ]

    /// One random structural edit: a value replaced, a key removed or added, a disk repeated, or the disks replaced.
    static func structuralEdit(_ object: inout [String: Any], using random: inout SeededRandom) {
        var disks = object["disks"] as? [[String: Any]] ?? []
        let value = hostileValues.randomElement(using: &random)!
        let key = fieldKeys.randomElement(using: &random)!
        switch Int.random(in: 0..<6, using: &random) {
        case 0: object[key] = value
        case 1: object[key] = nil
        case 2 where !disks.isEmpty:
            let index = Int.random(in: 0..<disks.count, using: &random)
            disks[index][key] = value
            object["disks"] = disks
        case 3 where !disks.isEmpty:
            let index = Int.random(in: 0..<disks.count, using: &random)
            disks[index][key] = nil
            object["disks"] = disks
        case 4 where !disks.isEmpty:
            object["disks"] = Array(repeating: disks[0], count: Int.random(in: 0..<300, using: &random))
        default:
            object["disks"] = value
        }
    }

    /// One random byte edit of the JSON text.
    static func byteEdit(_ bytes: inout [UInt8], using random: inout SeededRandom) {
        guard !bytes.isEmpty else { return }
        let at = Int.random(in: 0..<bytes.count, using: &random)
        switch Int.random(in: 0..<5, using: &random) {
        case 0: bytes[at] = UInt8.random(in: 0...255, using: &random)
        case 1: bytes.remove(at: at)
        case 2: bytes.insert(Array("{}[]\",:0-9e.\\u0000".utf8).randomElement(using: &random)!, at: at)
        case 3:
            let end = min(bytes.count, at + Int.random(in: 1...64, using: &random))
            bytes.insert(contentsOf: bytes[at..<end], at: at)
        default: bytes.removeSubrange(at..<min(bytes.count, at + Int.random(in: 1...64, using: &random)))
        }
    }

    @Test("Random edits of a genuine manifest: no crash, every rejection a one-line RepositoryError")
    func fuzz() throws {
        let original = try Self.genuine()
        let parsed = try #require(try JSONSerialization.jsonObject(with: original) as? [String: Any])
        // The genuine manifest itself passes.
        _ = try BackupManifest.decodeValid(original, from: Self.file, id: Self.id, domain: "web1")

        var random = SeededRandom(seed: 0x5eed_0009)
        var (accepted, rejected) = (0, 0)
        for round in 0..<3000 {
            var data: Data
            if round % 2 == 0 {
                var object = parsed
                for _ in 0..<Int.random(in: 1...3, using: &random) { Self.structuralEdit(&object, using: &random) }
                data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            } else {
                var bytes = Array(original)
                for _ in 0..<Int.random(in: 1...4, using: &random) { Self.byteEdit(&bytes, using: &random) }
                data = Data(bytes)
            }
            do {
                let manifest = try BackupManifest.decodeValid(data, from: Self.file, id: Self.id, domain: "web1")
                accepted += 1
                // What passes names nothing outside its point, and its numbers add up without trapping.
                _ = manifest.totalBytesCopied
                #expect(manifest.domainName == "web1")
                #expect(manifest.parent.map(RepositoryNames.isValid) ?? true)
                #expect(manifest.disks.count >= 1 && manifest.disks.count <= RepositoryNames.maxDisks)
                for disk in manifest.disks {
                    #expect(RepositoryNames.isValid(disk.target), "round \(round): \(disk.target)")
                    #expect(disk.image == disk.target + ".qcow2", "round \(round): \(disk.image)")
                    #expect(
                        disk.backingImage == nil || disk.backingImage == "../\(manifest.parent ?? "")/\(disk.image)",
                        "round \(round): \(String(describing: disk.backingImage))")
                    #expect(disk.virtualSize <= 1 << 63)
                }
            } catch {
                rejected += 1
                #expect(error.code == .corrupt, "round \(round): \(error.code) \(error.message)")
                #expect(error.message.hasPrefix(Self.file), "round \(round): \(error.message)")
                #expect(
                    !error.message.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7f },
                    "round \(round): a raw control character in \(RepositoryNames.quoted(error.message))")
                #expect(
                    !error.message.contains("outside.qcow2") || error.message.contains("\"../../../outside.qcow2\""))
            }
        }
        #expect(rejected > 1000, "accepted \(accepted), rejected \(rejected)")
    }

    @Test("What a repository may name: single components of [A-Za-z0-9._-], not hidden, bounded")
    func names() {
        for name in ["vda", "sdaa", "web1", "20261129T170722Z", "20261129T170722Z-2", "pullback-1a2b3c4d-x", "a.b_c-d"]
        {
            #expect(RepositoryNames.isValid(name), "\(name)")
        }
        let refused = [
            "", ".", "..", ".lock", "../escaped", "a/b", "/etc", "vda\u{0}x", "a b", "vda\n", "\u{1b}[2J", "é",
            String(repeating: "a", count: RepositoryNames.maxLength + 1),
        ]
        for name in refused { #expect(!RepositoryNames.isValid(name), "\(RepositoryNames.quoted(name))") }
        #expect(RepositoryNames.quoted("a\u{0}\u{1b}\"\n\u{202e}") == #""a\u{0}\u{1b}\"\u{a}\u{202e}""#)
        #expect(RepositoryNames.isValidDigest("sha256:" + String(repeating: "a", count: 64)))
        #expect(!RepositoryNames.isValidDigest("sha256:" + String(repeating: "A", count: 64)))
        #expect(!RepositoryNames.isValidDigest("md5:" + String(repeating: "a", count: 64)))
        let (a, b) = (String(repeating: "a", count: 64), String(repeating: "b", count: 64))
        #expect(RepositoryNames.isValidDigest("sha256-split:65536:\(a):\(b)"))
        #expect(RepositoryNames.isValidDigest("sha256-split:512:\(a):\(b)"))
        let refusedDigests = [
            "sha256-split:65535:\(a):\(b)", "sha256-split:256:\(a):\(b)", "sha256-split:4194304:\(a):\(b)",
            "sha256-split:+65536:\(a):\(b)", "sha256-split:65536:\(a)", "sha256-split:65536:\(a):\(b):\(a)",
            "sha256-split:65536:\(a.uppercased()):\(b)", "sha256-split:65536:\(a):", "sha256-split::\(a):\(b)",
            "sha256-split:99999999999999999999:\(a):\(b)",
        ]
        for digest in refusedDigests { #expect(!RepositoryNames.isValidDigest(digest), "\(digest)") }
    }

    @Test("A total of bytesCopied saturates instead of trapping")
    func totalSaturates() throws {
        var manifest = try JSONDecoder.iso8601.decode(BackupManifest.self, from: try Self.genuine())
        manifest.disks[0].bytesCopied = .max
        manifest.disks[1].bytesCopied = 1
        #expect(manifest.totalBytesCopied == .max)
    }
}

extension JSONDecoder {
    static var iso8601: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}
