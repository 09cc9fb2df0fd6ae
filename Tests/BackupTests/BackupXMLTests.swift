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
            incrementalFrom: nil, server: ExportAddress.unixSocket("/tmp/pullback-x/nbd.sock").serverXML,
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
            incrementalFrom: "pullback-0123abcd-20261129T170722Z", server: ExportAddress.unixSocket("/s").serverXML,
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
            incrementalFrom: "x<y>&'z'", server: ExportAddress.unixSocket(socket).serverXML,
            disks: [.init(target: "v'da", full: true, scratchFile: "/s&")], skipped: [])
        let root = try Self.parse(xml)
        #expect(root.elements(forName: "incremental").first?.stringValue == "x<y>&'z'")
        #expect(root.elements(forName: "server").first.flatMap { Self.attribute($0, "socket") } == socket)
        #expect(Self.disks(root).first.flatMap { Self.attribute($0, "name") } == "v'da")
    }

    @Test("a remote export is TCP on the host and port, with TLS unless insecure, and no scratch unless given")
    func tcp() throws {
        for (certificates, tls) in [("/etc/pki/pullback", "yes"), (nil, "no")] {
            let address = ExportAddress.tcp(host: "hv1.example", port: 10810, certificates: certificates)
            let xml = BackupXML.backup(
                incrementalFrom: nil, server: address.serverXML,
                disks: [.init(target: "vda", full: true, scratchFile: nil)], skipped: [])
            let root = try Self.parse(xml)
            let server = try #require(root.elements(forName: "server").first)
            #expect(Self.attribute(server, "transport") == "tcp")
            #expect(Self.attribute(server, "tls") == tls)
            #expect(Self.attribute(server, "name") == "hv1.example")
            #expect(Self.attribute(server, "port") == "10810")
            #expect(Self.disks(root).first?.elements(forName: "scratch").isEmpty == true)
            #expect(address.isNamed(in: xml))
            #expect(!ExportAddress.tcp(host: "hv1.example", port: 10811, certificates: nil).isNamed(in: xml))
            #expect(!ExportAddress.tcp(host: "hv2.example", port: 10810, certificates: nil).isNamed(in: xml))
        }
        #expect(
            ExportAddress.tcp(host: "hv1", port: 10809, certificates: "/c").uri(of: "vda")
                == "nbds://hv1:10809/vda?tls-certificates=/c")
        #expect(
            ExportAddress.tcp(host: "::1", port: 10809, certificates: nil).uri(of: "vda") == "nbd://[::1]:10809/vda")
    }

    @Test(
        "remote libvirt URIs have a host; local ones do not",
        arguments: [
            ("qemu:///system", nil), ("qemu:///embed?root=/tmp/x", nil), ("qemu+unix:///system", nil),
            ("qemu+tcp://hv1/system", "hv1"), ("qemu+tls://hv1.example:16514/system", "hv1.example"),
            ("qemu+ssh://root@10.0.0.5/system", "10.0.0.5"), ("qemu+tcp:///system", "localhost"),
            ("qemu+ssh://[fe80::1]/system", "fe80::1"),
        ] as [(String, String?)])
    func remoteHosts(uri: String, host: String?) {
        #expect(RemoteExport.remoteHost(of: uri) == host)
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
