import Foundation
import Testing

@testable import Backup
@testable import Repository

/// Which of the domain's disks a point lacks, read from the `domain.xml` it saved: what `list` and `restore` show.
@Suite("The disks a point lacks")
struct PointCoverageTests {
    /// A point of `web1` holding `vda`, in a fresh folder that keeps `domainXML` as its `domain.xml` (none when nil).
    static func withPoint(domainXML: String?, _ body: (BackupPoint, String) throws -> Void) throws {
        let root = NSTemporaryDirectory() + "pbcoverage-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
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
