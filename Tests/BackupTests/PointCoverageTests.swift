import Foundation
import TestSupport
import Testing

@testable import Backup
@testable import Repository

/// Which of the domain's disks a point lacks, read from the `domain.xml` it saved: what `list` and `restore` show.
@Suite("The disks a point lacks")
struct PointCoverageTests {
    /// A point of `web1` holding `vda`, in a fresh folder that keeps `domainXML` as its `domain.xml` (none when nil).
    static func withPoint(domainXML: String?, _ body: (BackupPoint, String) throws -> Void) throws {
        let directory = try TemporaryDirectory("pbcoverage")
        defer { directory.remove() }
        let root = directory.path
        let folder = root + "/web1/20261204T000000Z"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        if let domainXML { try Data(domainXML.utf8).write(to: URL(fileURLWithPath: folder + "/domain.xml")) }
        let manifest = BackupManifest(
            domainName: "web1", domainUUID: "5f1c3e0a-0000-4000-8000-000000000001", level: .full, checkpoint: "c",
            parent: nil, started: Date(timeIntervalSince1970: 1_800_000_000),
            finished: Date(timeIntervalSince1970: 1_800_000_060),
            disks: [.init(target: "vda", virtualSize: 1 << 20, image: "vda.qcow2", backingImage: nil, bytesCopied: 0)])
        try body(BackupPoint(id: "20261204T000000Z", folder: folder, manifest: manifest), root)
    }

    static func domain(_ disks: String, prologue: String = "") -> String {
        "\(prologue)<domain type='kvm'><name>web1</name><devices>\(disks)</devices></domain>"
    }

    static func disk(_ target: String, device: String = "disk") -> String {
        "<disk type='file' device='\(device)'><source file='/i/\(target)'/><target dev='\(target)'/></disk>"
    }

    @Test("the saved XML's disks the manifest does not hold, in order; cdrom and floppy drives are not counted")
    func lacked() throws {
        let xml = Self.domain(
            Self.disk("vdc") + Self.disk("vda") + Self.disk("sda", device: "cdrom") + Self.disk("fda", device: "floppy")
                + Self.disk("sdb", device: "lun") + Self.disk("vdb"))
        try Self.withPoint(domainXML: xml) { point, _ in
            #expect(PointCoverage.lackedDisks(of: point) == ["vdc", "sdb", "vdb"])
        }
        try Self.withPoint(domainXML: Self.domain(Self.disk("vda"))) { point, _ in
            #expect(PointCoverage.lackedDisks(of: point) == [])
        }
    }

    @Test("unknown without a readable domain.xml")
    func unknown() throws {
        try Self.withPoint(domainXML: nil) { point, _ in #expect(PointCoverage.lackedDisks(of: point) == nil) }
        try Self.withPoint(domainXML: "not xml <") { point, _ in #expect(PointCoverage.lackedDisks(of: point) == nil) }
    }

    @Test("a saved XML that declares entities is not read: a file of the host never becomes a disk's name")
    func entitiesRefused() throws {
        try Self.withPoint(domainXML: nil) { point, root in
            let secret = root + "/secret"
            try Data("hunter2".utf8).write(to: URL(fileURLWithPath: secret))
            let xml = Self.domain(
                Self.disk("&leak;"), prologue: "<!DOCTYPE domain [<!ENTITY leak SYSTEM 'file://\(secret)'>]>")
            try Data(xml.utf8).write(to: URL(fileURLWithPath: point.folder + "/domain.xml"))
            let lacked = PointCoverage.lackedDisks(of: point)
            #expect(lacked == nil, "\(String(describing: lacked))")
        }
    }
}

extension PointCoverageTests {
    /// The review's bypasses of a plain `<!DOCTYPE` search: the parser follows a declared encoding, so the declaration
    /// can be spelled in UTF-7 (plain ASCII) or UTF-16 (NULs between the letters).
    static let disguised: [(label: String, bytes: [UInt8])] = {
        let utf7 = """
            <?xml version="1.0" encoding="UTF-7"?>+ADwAIQ-DOCTYPE domain +AFsAPAAh-ENTITY t "LEAKED"+AD4AXQA+-\
            <domain type='kvm'><name>web1</name><devices><disk type='file' device='disk'><source file='/i/a'/>\
            <target dev='&t;'/></disk></devices></domain>
            """
        let plain = """
            <!DOCTYPE domain [<!ENTITY t "LEAKED">]><domain type='kvm'><name>web1</name><devices>\
            <disk type='file' device='disk'><source file='/i/a'/><target dev='&t;'/></disk></devices></domain>
            """
        let utf16 = plain.utf16.flatMap { [UInt8($0 & 0xff), UInt8($0 >> 8)] }
        let escape = Array(domain(disk("vdb") + "\u{1b}]0;TITLE\u{07}").utf8)
        return [("UTF-7", Array(utf7.utf8)), ("UTF-16 without a byte order mark", utf16), ("escape codes", escape)]
    }()

    @Test("a saved XML in another encoding, or with control characters, is not read", arguments: 0..<3)
    func disguisedRefused(case index: Int) throws {
        let (label, bytes) = Self.disguised[index]
        try Self.withPoint(domainXML: nil) { point, _ in
            try Data(bytes).write(to: URL(fileURLWithPath: point.folder + "/domain.xml"))
            #expect(PointCoverage.lackedDisks(of: point) == nil, "\(label)")
            let saved = String(decoding: bytes, as: UTF8.self)
            #expect(SavedDomainXML.refusal(of: saved) != nil, "\(label)")
            #expect(throws: BackupError.self, "\(label)") {
                _ = try RestoredDomain.definition(from: saved, name: "b", images: ["vda": "/r/a"], format: "raw")
            }
        }
    }

    @Test("what libvirt writes is read: UTF-8 with or without a declaration, text in any script")
    func plainRead() throws {
        for prologue in ["", "<?xml version='1.0' encoding='UTF-8'?>\n", "<?xml version=\"1.0\"?>"] {
            let xml = Self.domain(Self.disk("vda") + Self.disk("vdb"), prologue: prologue)
                .replacingOccurrences(of: "<name>web1</name>", with: "<name>web1</name><title>Сервер 服务器</title>")
            #expect(SavedDomainXML.refusal(of: xml) == nil)
            try Self.withPoint(domainXML: xml) { point, _ in #expect(PointCoverage.lackedDisks(of: point) == ["vdb"]) }
        }
    }
}
