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

    /// What a guest boots and what state it keeps beside its disks.
    package enum Firmware: String, Sendable {
        /// SeaBIOS on the `pc` machine: no state but the disks.
        case bios
        /// OVMF on `q35`, with a UEFI variable store (`<nvram>`, copied by libvirt from the template on the first
        /// start) and an emulated TPM 2.0 (swtpm, its state set up by libvirt on the first start): the state a
        /// backup point keeps beside the disks.
        case uefiTPM
    }

    /// OVMF's code, read-only, for `Firmware.uefiTPM` (Debian's `ovmf`, 4 MiB flash, no Secure Boot).
    package static let ovmfCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"
    /// The variable store template libvirt copies into a new domain's NVRAM (540,672 bytes).
    package static let ovmfVarsTemplate = "/usr/share/OVMF/OVMF_VARS_4M.fd"

    /// The domain XML of a guest named `name` with `disks`; `acpi` adds `<features><acpi/></features>` (without it
    /// QEMU runs with ACPI off, so PCI hotplug is refused). `.uefiTPM` firmware makes a q35 guest of 128 MiB with
    /// OVMF, an NVRAM from the template (libvirt picks its path) and a CRB TPM 2.0 on swtpm; OVMF needs ACPI, so
    /// it has it whatever `acpi` says.
    package static func xml(name: String, disks: [Disk], acpi: Bool = false, firmware: Firmware = .bios) -> String {
        let diskXML = disks.map { disk in
            """
            <disk type='file' device='disk'><driver name='qemu' type='\(disk.format)'/>\
            <source file='\(disk.path)'/><target dev='\(disk.target)' bus='virtio'/></disk>
            """
        }
        switch firmware {
        case .bios:
            return """
                <domain type='qemu'><name>\(name)</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
                <os><type arch='x86_64' machine='pc'>hvm</type></os>\(acpi ? "<features><acpi/></features>" : "")\
                <devices><emulator>/usr/bin/qemu-system-x86_64</emulator>\(diskXML.joined())\
                <memballoon model='none'/></devices></domain>
                """
        case .uefiTPM:
            return """
                <domain type='qemu'><name>\(name)</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>\
                <os><type arch='x86_64' machine='q35'>hvm</type>\
                <loader readonly='yes' type='pflash'>\(ovmfCode)</loader><nvram template='\(ovmfVarsTemplate)'/></os>\
                <features><acpi/></features><devices><emulator>/usr/bin/qemu-system-x86_64</emulator>\
                \(diskXML.joined())<tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>\
                <memballoon model='none'/></devices></domain>
                """
        }
    }
}
