import Foundation
import Libvirt
import TestSupport
import Testing

/// Pull-mode backups against libvirt's embedded QEMU driver with a real TCG guest, checked with nbdinfo.
///
/// Needs: libvirt-daemon-driver-qemu, qemu-system-x86, qemu-utils, libnbd-bin, the `libvirt-qemu` user and
/// `kvm` group, and root (qemu.conf runs QEMU as root with no security driver).
@Suite(.serialized, .timeLimit(.minutes(3)))
struct EmbeddedBackupTests {
    static let vdaSize: UInt64 = 64 << 20
    static let vdbSize: UInt64 = 32 << 20

    static func guestXML(name: String, root: String) -> String {
        TestGuest.xml(
            name: name,
            disks: ["vda", "vdb"].map { TestGuest.Disk(target: $0, path: "\(root)/\($0).qcow2") })
    }

    static func backupXML(root: String, incremental: String?) -> String {
        let disks = ["vda", "vdb"].map { disk in
            "<disk name='\(disk)' backup='yes' type='file'><scratch file='\(root)/b/\(disk).scratch'/></disk>"
        }
        return """
            <domainbackup mode='pull'>\(incremental.map { "<incremental>\($0)</incremental>" } ?? "")\
            <server transport='unix' socket='\(root)/b/nbd.sock'/>\
            <disks>\(disks.joined())</disks></domainbackup>
            """
    }

    static func checkpointXML(_ name: String) -> String {
        "<domaincheckpoint><name>\(name)</name><disks><disk name='vda'/><disk name='vdb'/></disks></domaincheckpoint>"
    }

    /// The QOM path of the device each disk image is attached to, from HMP `info block`.
    static func qomPaths(_ domain: Domain) async throws -> (paths: [String: String], info: String) {
        let info = try await domain.qemuMonitorCommand("info block")
        var paths: [String: String] = [:]
        var currentDisk: String?
        for line in info.split(whereSeparator: \.isNewline).map(String.init) {
            if let disk = ["vda", "vdb"].first(where: { line.contains("/\($0).qcow2") }) {
                currentDisk = disk
            } else if let disk = currentDisk, line.contains("Attached to:") {
                paths[disk] = line.components(separatedBy: "Attached to:")[1].trimmingCharacters(in: .whitespaces)
            }
        }
        return (paths, info)
    }

    @Test func unknownDomainGivesNoDomainWithLibvirtsMessage() async throws {
        try await withEmbeddedLibvirt { env in
            let error = await #expect(throws: LibvirtError.self) {
                _ = try await env.connection.domain(named: "pbv-no-such-domain")
            }
            #expect(error?.code == .noDomain)
            #expect(error?.libvirtCode == 42)  // VIR_ERR_NO_DOMAIN
            #expect(error?.message.contains("Domain not found") == true)
            #expect(error?.message.contains("pbv-no-such-domain") == true)
        }
    }

    @Test func startPausedThenDestroy() async throws {
        try await withEmbeddedLibvirt { env in
            try await Qemu.create(env.root + "/vda.qcow2", size: Self.vdaSize)
            try await Qemu.create(env.root + "/vdb.qcow2", size: Self.vdbSize)
            let domain = try await env.connection.define(xml: Self.guestXML(name: "pbv-paused", root: env.root))
            try await domain.start(paused: true)
            #expect(try await domain.state() == .paused)
            let again = await #expect(throws: LibvirtError.self) { try await domain.start() }
            #expect(again?.code == .operationInvalid)
            #expect(again?.libvirtCode == 55)  // VIR_ERR_OPERATION_INVALID
            #expect(try await domain.xmlDescription().contains("<name>pbv-paused</name>"))
            #expect(try await domain.uuid().count == 36)
            try await domain.destroy()
            #expect(try await domain.state() == .shutOff)
            try await domain.undefine()
            #expect(try await env.connection.domainNames().contains("pbv-paused") == false)
        }
    }

    @Test func openingABadURIGivesConnect() async throws {
        let error = await #expect(throws: LibvirtError.self) {
            _ = try await LibvirtConnection.open(uri: "pbvnosuchdriver:///system")
        }
        #expect(error?.code == .connect)
        #expect(error?.libvirtCode != 0)
        #expect(error?.message.contains("pbvnosuchdriver:///system") == true)
    }

    @Test func fullAndIncrementalPullBackup() async throws {
        try await withEmbeddedLibvirt { env in
            let root = env.root
            try await Qemu.create(root + "/vda.qcow2", size: Self.vdaSize)
            try await Qemu.create(root + "/vdb.qcow2", size: Self.vdbSize)
            let domain = try await env.connection.define(xml: Self.guestXML(name: "pbv-guest", root: root))
            #expect(domain.name == "pbv-guest")
            #expect(try await domain.state() == .shutOff)
            #expect(try await env.connection.domainNames() == ["pbv-guest"])

            try await domain.start()
            #expect(try await domain.state() == .running)
            let disks = try await domain.disks()
            #expect(disks.map(\.target) == ["vda", "vdb"])
            #expect(disks.map(\.device) == [.disk, .disk])
            #expect(disks.map(\.type) == [.file, .file])
            #expect(disks.map(\.format) == ["qcow2", "qcow2"])
            #expect(disks.map(\.sourcePath) == [root + "/vda.qcow2", root + "/vdb.qcow2"])
            #expect(try await domain.jobInfo().kind == .none)

            // Full backup, creating checkpoint cp1.
            let socket = root + "/b/nbd.sock"
            try await domain.beginBackup(
                backupXML: Self.backupXML(root: root, incremental: nil), checkpointXML: Self.checkpointXML("cp1"))
            let job = try await domain.jobInfo()
            #expect(job.isBackupActive)
            #expect(job.operation == .backup)
            let liveBackupXML = try await domain.backupXML()
            #expect(liveBackupXML.contains("mode='pull'"))
            #expect(liveBackupXML.contains(socket))
            for (disk, size) in [("vda", Self.vdaSize), ("vdb", Self.vdbSize)] {
                let uri = "nbd+unix:///\(disk)?socket=\(socket)"
                #expect(try await NBDInfo.size(uri) == size)
                let entries = try await NBDInfo.map(uri, context: "base:allocation")
                #expect(entries.first?.offset == 0)
                #expect(entries.reduce(0) { $0 + $1.length } == size)
            }
            let abortStart = ContinuousClock.now
            try await domain.abortJob()
            print("abortJob of the full backup took \(ContinuousClock.now - abortStart)")
            #expect(try await domain.jobInfo().isBackupActive == false)
            #expect(try await domain.jobInfo().isActive == false)
            #expect(try await domain.checkpointNames() == ["cp1"])

            // The guest writes 128 KiB at 1 MiB on vda, through its own device so the bitmaps see it.
            let (paths, blockInfo) = try await Self.qomPaths(domain)
            let vdaPath = try #require(paths["vda"], "info block said: \(blockInfo)")
            let wrote = try await domain.qemuMonitorCommand("qemu-io -d \(vdaPath) \"write -P 0x5a 1M 128k\"")
            // QEMU 7.2 prints qemu-io's report to its own stdout, not to the monitor: no output means no error.
            #expect(wrote.isEmpty || wrote.contains("wrote 131072/131072"), "\(wrote)")

            // Incremental backup from cp1, creating cp2: only the written range is dirty.
            try await domain.beginBackup(
                backupXML: Self.backupXML(root: root, incremental: "cp1"), checkpointXML: Self.checkpointXML("cp2"))
            #expect(try await domain.jobInfo().isBackupActive)
            #expect(try await domain.backupXML().contains("<incremental>cp1</incremental>"))
            let vdaDirty = try await NBDInfo.map(
                "nbd+unix:///vda?socket=\(socket)", context: "qemu:dirty-bitmap:backup-vda"
            )
            .filter { $0.type & 1 == 1 }
            #expect(
                vdaDirty == [NBDInfo.StatusEntry(offset: 1 << 20, length: 128 << 10, type: 1, description: "dirty")])
            let vdbDirty = try await NBDInfo.map(
                "nbd+unix:///vdb?socket=\(socket)", context: "qemu:dirty-bitmap:backup-vdb"
            )
            .filter { $0.type & 1 == 1 }
            #expect(vdbDirty.isEmpty)
            // The export serves what the guest wrote: 0x5a over the dirty range, zeros around it.
            let copy = root + "/b/vda.raw"
            let copied = try await ChildProcess.run(["nbdcopy", "nbd+unix:///vda?socket=\(socket)", copy])
            #expect(copied.succeeded, "\(copied)")
            let data = try Data(contentsOf: URL(fileURLWithPath: copy))
            #expect(UInt64(data.count) == Self.vdaSize)
            #expect(data[(1 << 20)..<((1 << 20) + (128 << 10))].allSatisfy { $0 == 0x5a })
            #expect(data[((1 << 20) - 4096)..<(1 << 20)].allSatisfy { $0 == 0 })
            #expect(data[((1 << 20) + (128 << 10))..<((1 << 20) + (132 << 10))].allSatisfy { $0 == 0 })
            try await domain.abortJob()
            #expect(try await domain.jobInfo().isBackupActive == false)

            // Checkpoints: list, XML, redefine from saved XML, delete.
            #expect(try await domain.checkpointNames() == ["cp1", "cp2"])
            let cp2 = try await domain.checkpoint(named: "cp2")
            let cp2XML = try await cp2.xmlDescription()
            #expect(cp2XML.contains("<name>cp2</name>"))
            #expect(cp2XML.contains("<parent>"))
            try await cp2.delete(metadataOnly: true)
            #expect(try await domain.checkpointNames() == ["cp1"])
            let redefined = try await domain.createCheckpoint(xml: cp2XML, redefine: true)
            #expect(redefined.name == "cp2")
            #expect(try await domain.checkpointNames() == ["cp1", "cp2"])
            try await domain.checkpoint(named: "cp1").delete()
            #expect(try await domain.checkpointNames() == ["cp2"])
            let missing = await #expect(throws: LibvirtError.self) { _ = try await domain.checkpoint(named: "cp1") }
            #expect(missing?.code == .noCheckpoint)
            #expect(missing?.libvirtCode == 103)  // VIR_ERR_NO_DOMAIN_CHECKPOINT
            let noJob = await #expect(throws: LibvirtError.self) { _ = try await domain.backupXML() }
            #expect(noJob?.code == .noBackupJob, "\(String(describing: noJob)) \(noJob?.libvirtCode ?? 0)")

            try await domain.destroy()
            #expect(try await domain.state() == .shutOff)
            try await domain.undefine(removingCheckpointMetadata: true)
            let gone = await #expect(throws: LibvirtError.self) {
                _ = try await env.connection.domain(named: "pbv-guest")
            }
            #expect(gone?.code == .noDomain)
        }
    }
}
