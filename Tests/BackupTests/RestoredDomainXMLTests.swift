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
        #expect(Self.disk(root, "sda") == nil, "a cdrom names a host file and is left out")
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

    static let hostile = """
        <domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0' \
        xmlns:q2='http://libvirt.org/schemas/domain/qemu/1.0'>
          <name>web1</name>
          <metadata><app:info xmlns:app='http://example.com/app'>kept</app:info></metadata>
          <memory unit='KiB'>65536</memory>
          <devices>
            <emulator>/tmp/evil-qemu</emulator>
            <disk type='file' device='disk'>
              <driver name='qemu' type='qcow2'/>
              <source file='/var/lib/libvirt/images/web1.qcow2'/>
              <target dev='vda' bus='virtio'/>
            </disk>
            <disk type='file' device='disk'>
              <source file='/srv/shared.qcow2'/>
              <target dev='vdc' bus='virtio'/>
            </disk>
            <disk type='file' device='cdrom'><source file='/iso/a.iso'/><target dev='sda' bus='sata'/></disk>
            <disk type='file' device='floppy'><source file='/f.img'/><target dev='fda' bus='fdc'/></disk>
            <disk type='block' device='lun'><source dev='/dev/sdz'/><target dev='sdb' bus='scsi'/></disk>
            <hostdev mode='subsystem' type='pci' managed='yes'>
              <source><address domain='0x0000' bus='0x06' slot='0x02' function='0x0'/></source>
            </hostdev>
            <hostdev mode='subsystem' type='usb'><source><vendor id='0x1234'/><product id='0xbeef'/></source></hostdev>
            <filesystem type='mount' accessmode='passthrough'>
              <source dir='/'/><target dir='hostroot'/>
            </filesystem>
            <interface type='network'><mac address='52:54:00:12:34:56'/><source network='default'/></interface>
          </devices>
          <qemu:commandline><qemu:arg value='-chardev'/><qemu:arg value='file,path=/etc/shadow'/></qemu:commandline>
          <q2:capabilities><q2:add capability='blockdev'/></q2:capabilities>
        </domain>
        """

    /// Every element of the document, depth first.
    static func allElements(_ element: XMLElement) -> [XMLElement] {
        [element] + (element.children ?? []).compactMap { $0 as? XMLElement }.flatMap(allElements)
    }

    @Test("only what a restored VM needs is kept: no host devices, folders, qemu passthrough, emulator or other disks")
    func hostileLeftOut() throws {
        let definition = try RestoredDomain.definition(
            from: Self.hostile, name: "web1-restored", images: ["vda": "/restore/vda.qcow2"], format: "qcow2")
        let root = try #require(try XMLDocument(xmlString: definition.xml, options: []).rootElement())
        let elements = Self.allElements(root)
        let names = Set(elements.compactMap(\.name))
        for gone in ["hostdev", "filesystem", "emulator", "qemu:commandline", "qemu:arg", "q2:capabilities", "q2:add"] {
            #expect(!names.contains(gone), "<\(gone)> is still in \(definition.xml)")
        }
        #expect(!definition.xml.contains(RestoredDomain.qemuNamespace), "\(definition.xml)")
        #expect(!definition.xml.contains("/etc/shadow") && !definition.xml.contains("/tmp/evil-qemu"))

        let disks = root.elements(forName: "devices").first?.elements(forName: "disk") ?? []
        #expect(disks.count == 1, "only the restored disk stays: \(definition.xml)")
        #expect(
            Self.disk(root, "vda")?.elements(forName: "source").first?.attribute(forName: "file")?.stringValue
                == "/restore/vda.qcow2")
        for path in ["/srv/shared.qcow2", "/iso/a.iso", "/f.img", "/dev/sdz"] {
            #expect(!definition.xml.contains(path), "\(path) is still named: \(definition.xml)")
        }
        #expect(root.elements(forName: "devices").first?.elements(forName: "interface").count == 1)
        #expect(definition.xml.contains("kept"), "metadata of other applications stays")

        #expect(
            definition.dropped == [
                "<qemu:commandline>", "<q2:capabilities>", "<emulator> /tmp/evil-qemu", "<hostdev> (2)", "<filesystem>",
                "disks not restored", "cdrom disks", "floppy disks", "lun disks",
            ], "\(definition.dropped)")
    }

    @Test("a plain domain with every disk restored drops nothing")
    func nothingDropped() throws {
        let saved = """
            <domain type='qemu'><name>a</name><devices>\
            <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/a.qcow2'/>\
            <target dev='vda' bus='virtio'/></disk></devices></domain>
            """
        let definition = try RestoredDomain.definition(
            from: saved, name: "b", images: ["vda": "/r/vda.raw"], format: "raw")
        #expect(definition.dropped.isEmpty)
        let root = try #require(try XMLDocument(xmlString: definition.xml, options: []).rootElement())
        #expect(
            Self.disk(root, "vda")?.elements(forName: "source").first?.attribute(forName: "file")?.stringValue
                == "/r/vda.raw")
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

extension RestoredDomainXMLTests {
    static let capabilities = """
        <capabilities><host><cpu><arch>x86_64</arch></cpu></host>
          <guest><os_type>hvm</os_type>
            <arch name='x86_64'><wordsize>64</wordsize><emulator>/usr/bin/qemu-system-x86_64</emulator>
              <domain type='qemu'/><domain type='kvm'><emulator>/usr/libexec/qemu-kvm</emulator></domain></arch>
          </guest>
          <guest><os_type>hvm</os_type>
            <arch name='aarch64'><emulator>/usr/bin/qemu-system-aarch64</emulator><domain type='qemu'/></arch>
          </guest>
        </capabilities>
        """

    static func withEmulator(_ path: String, arch: String = "x86_64") -> String {
        """
        <domain type='qemu'><name>web1</name><memory unit='KiB'>65536</memory>
          <os><type arch='\(arch)' machine='pc'>hvm</type></os>
          <devices><emulator>\(path)</emulator>
            <disk type='file' device='disk'><source file='/a.qcow2'/><target dev='vda' bus='virtio'/></disk>
          </devices>
        </domain>
        """
    }

    @Test("the host's own emulator for the domain's architecture stays unmentioned; any other is dropped, named")
    func emulators() throws {
        let host = HostEmulators(capabilities: Self.capabilities)
        #expect(host.offers("/usr/libexec/qemu-kvm", for: "x86_64"))
        for kept in ["/usr/bin/qemu-system-x86_64", "/usr/libexec/qemu-kvm"] {
            let definition = try RestoredDomain.definition(
                from: Self.withEmulator(kept), name: "c", images: ["vda": "/r/vda.qcow2"], format: "qcow2",
                emulators: host)
            #expect(definition.xml.contains("<emulator>\(kept)</emulator>"), "\(definition.xml)")
            #expect(definition.dropped.isEmpty, "\(definition.dropped)")
        }
        for (path, arch) in [
            ("/tmp/evil-qemu", "x86_64"), ("/usr/bin/qemu-system-aarch64", "x86_64"),
            ("/usr/bin/qemu-system-x86_64", "i686"),
        ] {
            let definition = try RestoredDomain.definition(
                from: Self.withEmulator(path, arch: arch), name: "c", images: ["vda": "/r/vda.qcow2"],
                format: "qcow2", emulators: host)
            #expect(!definition.xml.contains("<emulator>"), "\(definition.xml)")
            #expect(definition.dropped == ["<emulator> \(path)"], "\(definition.dropped)")
        }
        // Unreadable capabilities offer nothing.
        #expect(HostEmulators(capabilities: "<capabilities").byArchitecture.isEmpty)
    }
}

extension RestoredDomainXMLTests {
    @Test("a saved XML declaring a document type is refused: its entities could pull the host's files in")
    func documentTypeRefused() throws {
        let secret = FileManager.default.temporaryDirectory.appendingPathComponent("pullback-secret-\(getpid())")
        try Data("host-secret-7d1f".utf8).write(to: secret)
        defer { try? FileManager.default.removeItem(at: secret) }
        for doctype in ["<!DOCTYPE domain [<!ENTITY leak SYSTEM \"file://\(secret.path)\">]>", "<!doctype domain>"] {
            let saved = """
                <?xml version='1.0'?>\(doctype)<domain type='qemu'><name>a</name><description>&leak;</description>\
                <devices><disk type='file' device='disk'><source file='/a.qcow2'/><target dev='vda' bus='virtio'/>\
                </disk></devices></domain>
                """
            let error = #expect(throws: BackupError.self) {
                _ = try RestoredDomain.definition(from: saved, name: "b", images: ["vda": "/r/vda.raw"], format: "raw")
            }
            #expect(error?.message.contains("<!DOCTYPE>") == true, "\(String(describing: error))")
            #expect(error?.message.contains("host-secret") == false)
        }
    }
}
