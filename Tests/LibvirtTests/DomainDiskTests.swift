import Libvirt
import Testing

/// Parsing `<disk>` elements of domain XML, the way libvirt writes them.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct DomainDiskTests {
    @Test func parsesFileBlockCdromAndFloppyDisks() throws {
        let xml = """
            <domain type='kvm' id='3'>
              <name>web1</name>
              <devices>
                <emulator>/usr/bin/qemu-system-x86_64</emulator>
                <disk type='file' device='disk'>
                  <driver name='qemu' type='qcow2' discard='unmap'/>
                  <source file='/var/lib/libvirt/images/web1.qcow2' index='2'/>
                  <backingStore/>
                  <target dev='vda' bus='virtio'/>
                  <alias name='virtio-disk0'/>
                </disk>
                <disk type='block' device='lun'>
                  <driver name='qemu' type='raw'/>
                  <source dev='/dev/mapper/data'/>
                  <target dev='sda' bus='scsi'/>
                </disk>
                <disk type='file' device='cdrom'>
                  <driver name='qemu' type='raw'/>
                  <target dev='sdb' bus='sata'/>
                  <readonly/>
                </disk>
                <disk type='file' device='floppy'>
                  <source file='/srv/boot.img'/>
                  <target dev='fda'/>
                </disk>
                <disk type='network' device='disk'>
                  <source protocol='nbd' name='export'><host name='backup' port='10809'/></source>
                  <target dev='vdc' bus='virtio'/>
                </disk>
                <interface type='network'><source network='default'/></interface>
              </devices>
            </domain>
            """
        let disks = try DomainDisk.parse(domainXML: xml)
        #expect(
            disks == [
                DomainDisk(
                    target: "vda", device: .disk, type: .file, format: "qcow2",
                    sourcePath: "/var/lib/libvirt/images/web1.qcow2", bus: "virtio"),
                DomainDisk(
                    target: "sda", device: .lun, type: .block, format: "raw", sourcePath: "/dev/mapper/data",
                    bus: "scsi"),
                DomainDisk(
                    target: "sdb", device: .cdrom, type: .file, format: "raw", sourcePath: nil, bus: "sata",
                    isReadOnly: true),
                DomainDisk(target: "fda", device: .floppy, type: .file, format: nil, sourcePath: "/srv/boot.img"),
                DomainDisk(target: "vdc", device: .disk, type: .network, format: nil, sourcePath: nil, bus: "virtio"),
            ])
    }

    @Test func textThatIsNotDomainXMLGivesXMLError() {
        for text in ["this is not XML", "<domaincheckpoint><name>cp1</name></domaincheckpoint>"] {
            let error = #expect(throws: LibvirtError.self) { _ = try DomainDisk.parse(domainXML: text) }
            #expect(error?.code == .xml)
            #expect(error?.libvirtCode == 0)
        }
    }
}
