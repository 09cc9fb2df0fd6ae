import Foundation
import Testing

extension CopyIntegration {
    /// `restore --define` on a point whose saved domain.xml reaches into the host: the new domain keeps none of it,
    /// starts, and stderr says what was left out.
    @Suite("restore --define leaves out what reaches into the host (embedded libvirt)", .serialized)
    struct RestoreDefineTests {
        @Test(
            "hostdev, filesystem, qemu:commandline, a foreign emulator, cdrom and disks not restored are left out, with a note; the host's own emulator stays, unmentioned",
            .timeLimit(.minutes(3)))
        func hostileSavedXML() async throws {
            try await LibvirtGuest.run(disks: [("vda", 16 * mib), ("vdb", 16 * mib)]) { fx, guest in
                try await guest.write("vda", "write -P 0x7a 0 1M")
                let (full, _) = try await BackupTests.backup(guest)
                let saved = "\(guest.repo)/\(guest.name)/\(full.point)/domain.xml"
                var xml = String(decoding: try FileFacts.contents(saved), as: UTF8.self)

                // As saved, the domain runs the host's own emulator for its architecture: kept, and nothing said.
                let plain = "\(guest.name)-plain"
                do {
                    let restored = try await guest.pullback([
                        "restore", "--repo", guest.repo, guest.name, "--to", fx.target("plain"), "--define", plain,
                        "--connect", guest.uri,
                    ])
                    try requireSuccess(restored)
                    #expect(!restored.stderr.contains("emulator"), "\(restored)")
                    let defined = try await guest.virshChecked(["dumpxml", plain]).stdout
                    #expect(defined.contains("<emulator>/usr/bin/qemu-system-x86_64</emulator>"), "\(defined)")
                    await guest.removeDomain(plain)
                } catch {
                    await guest.removeDomain(plain)
                    throw error
                }

                // Any other emulator is dropped (libvirt picks the host's), and the note says which.
                let evil = fx.path("evil-qemu")
                #expect(xml.contains("<emulator>/usr/bin/qemu-system-x86_64</emulator>"), "\(xml)")
                xml = xml.replacingOccurrences(
                    of: "<emulator>/usr/bin/qemu-system-x86_64</emulator>", with: "<emulator>\(evil)</emulator>")
                let hostile = """
                    <hostdev mode='subsystem' type='pci' managed='yes'><source>\
                    <address domain='0x0000' bus='0x00' slot='0x1f' function='0x7'/></source></hostdev>\
                    <filesystem type='mount' accessmode='passthrough'><source dir='/'/><target dir='hostroot'/>\
                    </filesystem><disk type='file' device='cdrom'><source file='\(fx.path("none.iso"))'/>\
                    <target dev='sdc' bus='sata'/><readonly/></disk></devices>
                    """
                xml = xml.replacingOccurrences(of: "</devices>", with: hostile)
                xml = xml.replacingOccurrences(
                    of: "<domain ", with: "<domain xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0' ")
                xml = xml.replacingOccurrences(
                    of: "</domain>",
                    with: "<qemu:commandline><qemu:arg value='-no-such-qemu-option'/></qemu:commandline></domain>")
                try FileManager.default.removeItem(atPath: saved)
                try FileFacts.create(saved, with: Data(xml.utf8))

                let copy = "\(guest.name)-copy"
                do {
                    let restored = try await guest.pullback([
                        "restore", "--repo", guest.repo, guest.name, "--disk", "vda", "--to", fx.target("copy"),
                        "--define", copy, "--connect", guest.uri,
                    ])
                    try requireSuccess(restored)
                    let notes = restored.stderrLines
                    #expect(notes.count == 1, "one note on stderr: \(restored)")
                    for kind in [
                        "<hostdev>", "<filesystem>", "<qemu:commandline>", "<emulator> \(evil)", "cdrom", "restored",
                    ] {
                        #expect(notes.first?.contains(kind) == true, "the note does not name \(kind): \(restored)")
                    }

                    let defined = try await guest.virshChecked(["dumpxml", copy]).stdout
                    #expect(defined.contains("<emulator>/usr/bin/qemu-system-x86_64</emulator>"), "\(defined)")
                    for gone in [
                        "<hostdev", "<filesystem", "qemu:commandline", "no-such-qemu-option", "none.iso", evil,
                    ] {
                        #expect(!defined.contains(gone), "\(gone) is in the new domain: \(defined)")
                    }
                    #expect(defined.components(separatedBy: "<disk ").count == 2, "one disk: \(defined)")
                    try await guest.virshChecked(["start", copy])
                    await guest.removeDomain(copy)
                } catch {
                    await guest.removeDomain(copy)
                    throw error
                }
            }
        }
    }
}
