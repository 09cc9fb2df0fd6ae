import Foundation
import Testing

@testable import Backup

#if canImport(FoundationXML)
    import FoundationXML
#endif

@Suite("The domain XML defined for restored disks")
struct RestoredDomainXMLTests {
    static let saved = """
        <domain type='kvm'>
          <name>web1</name>
          <uuid>7f1c2d4e-1111-2222-3333-444455556666</uuid>
          <memory unit='KiB'>65536</memory>
          <devices>
            <disk type='file' device='disk'>
              <driver name='qemu' type='qcow2'/>
              <source file='/var/lib/libvirt/images/web1.qcow2'/>
              <backingStore type='file'><format type='qcow2'/><source file='/base.qcow2'/></backingStore>
              <target dev='vda' bus='virtio'/>
            </disk>
            <disk type='block' device='disk'>
              <driver name='qemu' type='raw'/>
              <source dev='/dev/vg/web1-data'/>
              <target dev='vdb' bus='virtio'/>
            </disk>
            <disk type='file' device='cdrom'>
              <source file='/iso/install.iso'/>
              <target dev='sda' bus='sata'/>
            </disk>
            <interface type='network'>
              <mac address='52:54:00:12:34:56'/>
              <source network='default'/>
            </interface>
          </devices>
        </domain>
        """

    static func disk(_ root: XMLElement, _ target: String) -> XMLElement? {
        root.elements(forName: "devices").first?.elements(forName: "disk").first {
            $0.elements(forName: "target").first?.attribute(forName: "dev")?.stringValue == target
        }
    }

    @Test("new name, no uuid, no MAC; restored disks point at their images; disks not restored are gone")
    func rewritten() throws {
        let xml = try RestoredDomain.xml(
            from: Self.saved, name: "web1-restored", images: ["vda": "/restore/vda.raw"], format: "raw")
        let root = try #require(try XMLDocument(xmlString: xml, options: []).rootElement())
        #expect(root.elements(forName: "name").map(\.stringValue) == ["web1-restored"])
        #expect(root.elements(forName: "uuid").isEmpty)
        let interface = try #require(root.elements(forName: "devices").first?.elements(forName: "interface").first)
        #expect(interface.elements(forName: "mac").isEmpty)
        #expect(interface.elements(forName: "source").count == 1)

        let vda = try #require(Self.disk(root, "vda"))
        #expect(vda.attribute(forName: "type")?.stringValue == "file")
        let sources = vda.elements(forName: "source")
        #expect(sources.count == 1)
        #expect(sources.first?.attribute(forName: "file")?.stringValue == "/restore/vda.raw")
        #expect(vda.elements(forName: "backingStore").isEmpty)
        #expect(vda.elements(forName: "driver").first?.attribute(forName: "type")?.stringValue == "raw")

        #expect(Self.disk(root, "vdb") == nil, "a disk not restored must not stay shared with the original")
        #expect(Self.disk(root, "sda") != nil, "a cdrom is no backed-up disk and stays")
    }

    @Test("a block disk restored becomes a file disk in the new format")
    func blockDiskRestored() throws {
        let xml = try RestoredDomain.xml(
            from: Self.saved, name: "copy", images: ["vda": "/r/vda.qcow2", "vdb": "/r/vdb.qcow2"], format: "qcow2")
        let root = try #require(try XMLDocument(xmlString: xml, options: []).rootElement())
        let vdb = try #require(Self.disk(root, "vdb"))
        #expect(vdb.attribute(forName: "type")?.stringValue == "file")
        #expect(vdb.elements(forName: "source").first?.attribute(forName: "file")?.stringValue == "/r/vdb.qcow2")
        #expect(vdb.elements(forName: "source").first?.attribute(forName: "dev") == nil)
        #expect(vdb.elements(forName: "driver").first?.attribute(forName: "type")?.stringValue == "qcow2")
    }

    @Test("XML that is not a domain is refused")
    func refused() {
        #expect(throws: BackupError.self) {
            try RestoredDomain.xml(from: "<network/>", name: "x", images: [:], format: "raw")
        }
        #expect(throws: BackupError.self) {
            try RestoredDomain.xml(from: "not xml <", name: "x", images: [:], format: "raw")
        }
    }
}
