import Foundation
import Testing

extension BackupIntegration {
    /// The content digest of a running guest's disk, read from a pull-mode export that libvirt serves, against the
    /// digest the point just made of it recorded.
    @Suite("content digest of a live disk (private libvirtd)", .serialized)
    struct LiveDigestTests {
        @Test(
            "pullback digest of a live disk's pull-mode export equals the digest its newest point recorded",
            .timeLimit(.minutes(3)))
        func liveExport() async throws {
            try await LibvirtGuest.run(disks: [("vda", 16 * mib)], driver: .daemon) { fx, guest in
                try await guest.write("vda", "write -P 0x61 0 1M", "write -z 512k 64k", "write -P 0x62 5M 100k")
                let (full, _) = try await BackupTests.backup(guest)
                try await guest.write("vda", "write -P 0x63 3M 64k", "write -z 5M 64k")
                let (inc, _) = try await BackupTests.backup(guest)
                #expect(inc.level == "incremental", "\(inc)")
                let recorded = try ContentDigestCommandTests.recordedDigests(guest, inc.point)

                // A pull job of our own on the idle guest: its export is the disk as the point saw it.
                let socket = fx.path("live.sock")
                let xml = fx.path("live.xml")
                try Data(
                    """
                    <domainbackup mode='pull'><server transport='unix' socket='\(socket)'/><disks>\
                    <disk name='vda' backup='yes' type='file'><scratch file='\(fx.path("live-scratch.qcow2"))'/>\
                    </disk></disks></domainbackup>
                    """.utf8
                ).write(to: URL(fileURLWithPath: xml))
                try await fx.runChecked(["virsh", "-c", guest.uri, "backup-begin", guest.name, xml])
                let live = try await ContentDigestCommandTests.digest(fx, "nbd+unix:///vda?socket=\(socket)")
                try await RemoteHarnessTests.abort(guest, guest.uri)

                #expect(live == recorded["vda"], "the live disk against point \(inc.point)")
                let older = try ContentDigestCommandTests.recordedDigests(guest, full.point)["vda"]
                #expect(live != older, "the full point read other bytes")
                let reference = try await ContentDigestCommandTests.reference(fx, guest.reference("vda"))
                #expect(live == reference, "Python's digest of the reference copy of the disk")
            }
        }
    }
}
