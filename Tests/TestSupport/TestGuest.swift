/// What the tests' libvirt guests share, whichever QEMU driver runs them: the driver's settings and the domain XML of
/// a small TCG guest (64 MiB, one vCPU, no operating system: only its disks matter).
package enum TestGuest {
    /// One disk of a guest: a file image attached as virtio `target`.
    package struct Disk: Sendable {
        package let target: String
        package let path: String
        /// `qcow2` or `raw`.
        package let format: String

        package init(target: String, path: String, format: String = "qcow2") {
            self.target = target
            self.path = path
            self.format = format
        }
    }

    /// qemu.conf for tests, from the shared notes: QEMU runs as root, with no security driver and no changes to file
    /// ownership.
    package static let qemuConf = """
        user = "root"
        group = "root"
        security_driver = "none"
        dynamic_ownership = 0
        remember_owner = 0

        """

    /// qemu.conf for the embedded driver (`qemu:///embed?root=ROOT`, at `ROOT/etc/qemu.conf`), which has no virtlogd:
    /// QEMU's output goes to a file.
    package static let embeddedQemuConf = qemuConf + "stdio_handler = \"file\"\n"

    /// The domain XML of a guest named `name` with `disks`; `acpi` adds `<features><acpi/></features>` (without it
    /// QEMU runs with ACPI off, so PCI hotplug is refused).
    package static func xml(name: String, disks: [Disk], acpi: Bool = false) -> String {
        let diskXML = disks.map { disk in
            """
            <disk type='file' device='disk'><driver name='qemu' type='\(disk.format)'/>\
            <source file='\(disk.path)'/><target dev='\(disk.target)' bus='virtio'/></disk>
            """
        }
        return """
            <domain type='qemu'><name>\(name)</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
            <os><type arch='x86_64' machine='pc'>hvm</type></os>\(acpi ? "<features><acpi/></features>" : "")<devices>\
            <emulator>/usr/bin/qemu-system-x86_64</emulator>\(diskXML.joined())<memballoon model='none'/></devices></domain>
            """
    }
}
