import Foundation
import Testing

@testable import Backup

#if canImport(FoundationXML)
    import FoundationXML
#endif

@Suite("The XML handed to libvirt for a pull-mode backup")
struct BackupXMLTests {
    static func parse(_ xml: String) throws -> XMLElement {
        let document = try XMLDocument(xmlString: xml, options: [])
        return try #require(document.rootElement())
    }

    static func attribute(_ element: XMLElement, _ name: String) -> String? {
        element.attribute(forName: name)?.stringValue
    }

    static func disks(_ root: XMLElement) -> [XMLElement] {
        root.elements(forName: "disks").first?.elements(forName: "disk") ?? []
    }

    @Test("a full backup exports every chosen disk on the socket, with no incremental base and no backup mode")
    func full() throws {
        let xml = BackupXML.backup(
            incrementalFrom: nil, socket: "/tmp/pullback-x/nbd.sock",
            disks: [.init(target: "vda", full: true, scratchFile: "/scratch/vda.s.qcow2")], skipped: ["sda"])
        let root = try Self.parse(xml)
        #expect(root.name == "domainbackup")
        #expect(Self.attribute(root, "mode") == "pull")
        #expect(root.elements(forName: "incremental").isEmpty)
        let server = try #require(root.elements(forName: "server").first)
        #expect(Self.attribute(server, "transport") == "unix")
        #expect(Self.attribute(server, "socket") == "/tmp/pullback-x/nbd.sock")
        let disks = Self.disks(root)
        #expect(disks.map { Self.attribute($0, "name") } == ["vda", "sda"])
        #expect(disks.map { Self.attribute($0, "backup") } == ["yes", "no"])
        #expect(Self.attribute(disks[0], "backupmode") == nil)
        let scratch = try #require(disks[0].elements(forName: "scratch").first)
        #expect(Self.attribute(scratch, "file") == "/scratch/vda.s.qcow2")
    }

    @Test("an incremental names its base, and a disk new since the base is copied in full")
    func incremental() throws {
        let xml = BackupXML.backup(
            incrementalFrom: "pullback-0123abcd-20261129T170722Z", socket: "/s",
            disks: [
                .init(target: "vda", full: false, scratchFile: "/a"),
                .init(target: "vdb", full: true, scratchFile: "/b"),
            ],
            skipped: [])
        let root = try Self.parse(xml)
        #expect(root.elements(forName: "incremental").first?.stringValue == "pullback-0123abcd-20261129T170722Z")
        let modes = Self.disks(root).map { Self.attribute($0, "backupmode") }
        #expect(modes == ["incremental", "full"])
    }

    @Test("names and paths are escaped, so the XML stays what was meant")
    func escaped() throws {
        let socket = "/tmp/a'b\"c<d>&e/nbd.sock"
        let xml = BackupXML.backup(
            incrementalFrom: "x<y>&'z'", socket: socket, disks: [.init(target: "v'da", full: true, scratchFile: "/s&")],
            skipped: [])
        let root = try Self.parse(xml)
        #expect(root.elements(forName: "incremental").first?.stringValue == "x<y>&'z'")
        #expect(root.elements(forName: "server").first.flatMap { Self.attribute($0, "socket") } == socket)
        #expect(Self.disks(root).first.flatMap { Self.attribute($0, "name") } == "v'da")
    }

    @Test("the checkpoint puts a bitmap on the copied disks and none on the skipped ones")
    func checkpoint() throws {
        let xml = BackupXML.checkpoint(
            name: "pullback-0123abcd-20261129T170722Z", disks: ["vda", "vdb"], skipped: ["sda"])
        let root = try Self.parse(xml)
        #expect(root.name == "domaincheckpoint")
        #expect(root.elements(forName: "name").first?.stringValue == "pullback-0123abcd-20261129T170722Z")
        let disks = Self.disks(root)
        #expect(disks.map { Self.attribute($0, "name") } == ["vda", "vdb", "sda"])
        #expect(disks.map { Self.attribute($0, "checkpoint") } == ["bitmap", "bitmap", "no"])
    }
}
