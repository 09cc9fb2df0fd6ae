import Foundation
import Testing

@testable import Backup

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// Where a domain's state beyond its disks is, read from its live XML, and how a restored domain's XML names its own:
/// never the original's NVRAM, never the host's TPM, never firmware from outside the firmware folders.
@Suite("Domain state: locations and the restored domain's firmware")
struct DomainStateXMLTests {
    static let uuid = "7F1C2D4E-1111-2222-3333-444455556666"

    static func domain(os: String, devices: String = "") -> String {
        """
        <domain type='qemu'><name>uefi</name><uuid>\(uuid)</uuid><memory unit='MiB'>128</memory>
        <os><type arch='x86_64' machine='q35'>hvm</type>\(os)</os><devices>
        <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/images/uefi.qcow2'/>
        <target dev='vda' bus='virtio'/></disk>\(devices)</devices></domain>
        """
    }

    static let ovmf = """
        <loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>
        <nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'>/var/lib/libvirt/qemu/nvram/uefi_VARS.fd</nvram>
        """
    static let emulatedTPM = "<tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>"

    @Test func theLiveXMLNamesTheNVRAMAndTheDriverTheTPMFolder() {
        let xml = Self.domain(os: Self.ovmf, devices: Self.emulatedTPM)
        let system = DomainStateLocation.of(liveXML: xml, uuid: Self.uuid, uri: "qemu:///system")
        #expect(system.nvram == "/var/lib/libvirt/qemu/nvram/uefi_VARS.fd")
        #expect(system.tpmFolder == "/var/lib/libvirt/swtpm/7f1c2d4e-1111-2222-3333-444455556666/tpm2")
        let embedded = DomainStateLocation.of(liveXML: xml, uuid: Self.uuid, uri: "qemu:///embed?root=/srv/vm")
        #expect(embedded.tpmFolder == "/srv/vm/lib/swtpm/7f1c2d4e-1111-2222-3333-444455556666/tpm2")
        let tpm12 = Self.domain(os: "", devices: "<tpm model='tpm-tis'><backend type='emulator' version='1.2'/></tpm>")
        #expect(
            DomainStateLocation.of(liveXML: tpm12, uuid: Self.uuid, uri: "qemu+unix:///system").tpmFolder
                == "/var/lib/libvirt/swtpm/7f1c2d4e-1111-2222-3333-444455556666/tpm1.2")
        // A BIOS guest has nothing beyond its disks.
        #expect(DomainStateLocation.of(liveXML: Self.domain(os: ""), uuid: Self.uuid, uri: "qemu:///system").isEmpty)
    }

    @Test func theSwtpmStorageIsKnownOnlyForLocalQemuDrivers() {
        let home = ["HOME": "/home/ann"]
        #expect(
            DomainStateLocation.swtpmStorage(of: "qemu:///session", environment: home)
                == "/home/ann/.config/libvirt/qemu/swtpm")
        #expect(
            DomainStateLocation.swtpmStorage(of: "qemu:///session", environment: ["XDG_CONFIG_HOME": "/cfg"])
                == "/cfg/libvirt/qemu/swtpm")
        #expect(DomainStateLocation.swtpmStorage(of: "qemu:///system?socket=/tmp/s") == "/var/lib/libvirt/swtpm")
        for uri in [
            "qemu+ssh://host/system", "qemu+tcp://10.0.0.1/system", "test:///default", "qemu:///embed?root=rel",
        ] {
            #expect(DomainStateLocation.swtpmStorage(of: uri) == nil, "\(uri)")
        }
    }

    @Test func aPassedThroughTPMOrANetworkNVRAMIsNotKept() {
        let xml = Self.domain(
            os:
                "<loader type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader><nvram type='network'><source protocol='iscsi' name='x'/></nvram>",
            devices: "<tpm model='tpm-tis'><backend type='passthrough'><device path='/dev/tpm0'/></backend></tpm>")
        let location = DomainStateLocation.of(liveXML: xml, uuid: Self.uuid, uri: "qemu:///system")
        #expect(location.isEmpty && location.notKept.count == 2, "\(location)")
    }

    static func restored(_ saved: String, nvram: String?) throws -> (XMLElement, [String]) {
        let definition = try RestoredDomain.definition(
            from: saved, name: "copy", images: ["vda": "/restore/vda.qcow2"], format: "qcow2", nvram: nvram)
        let document = try XMLDocument(xmlString: definition.xml)
        return (try #require(document.rootElement()), definition.dropped)
    }

    static func nvram(of root: XMLElement) -> XMLElement? {
        root.elements(forName: "os").first?.elements(forName: "nvram").first
    }

    @Test func theRestoredDomainNamesItsOwnNVRAMNeverTheOriginals() throws {
        let saved = Self.domain(os: Self.ovmf, devices: Self.emulatedTPM)
        let (root, dropped) = try Self.restored(saved, nvram: "/restore/nvram.fd")
        #expect(Self.nvram(of: root)?.stringValue == "/restore/nvram.fd" && dropped.isEmpty, "\(dropped)")
        #expect(Self.nvram(of: root)?.attribute(forName: "template")?.stringValue == "/usr/share/OVMF/OVMF_VARS_4M.fd")
        #expect(root.elements(forName: "devices").first?.elements(forName: "tpm").count == 1)
        // No NVRAM in the point: libvirt makes the copy one of its own from the template.
        let (fresh, _) = try Self.restored(saved, nvram: nil)
        #expect(Self.nvram(of: fresh)?.stringValue == "", "\(fresh.xmlString)")
    }

    @Test func firmwareFromOutsideTheFirmwareFoldersAndTheHostsTPMAreLeftOut() throws {
        let saved = Self.domain(
            os: "<loader readonly='yes' type='pflash'>/usr/share/OVMF/../../../etc/shadow</loader><nvram>/x.fd</nvram>",
            devices: "<tpm model='tpm-tis'><backend type='passthrough'><device path='/dev/tpm0'/></backend></tpm>")
        let (root, dropped) = try Self.restored(saved, nvram: "/restore/nvram.fd")
        let os = try #require(root.elements(forName: "os").first)
        #expect(os.elements(forName: "loader").isEmpty && os.elements(forName: "nvram").isEmpty, "\(root.xmlString)")
        #expect(root.elements(forName: "devices").first?.elements(forName: "tpm").isEmpty == true)
        #expect(
            dropped.count == 2 && dropped[0].hasPrefix("<loader> ") && dropped[1] == "<tpm> of the host", "\(dropped)")
        let template = Self.domain(
            os: "<loader type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader><nvram template='/root/vars.fd'/>")
        let (kept, templateDropped) = try Self.restored(template, nvram: nil)
        #expect(Self.nvram(of: kept)?.attribute(forName: "template") == nil && templateDropped.count == 1)
    }
}
