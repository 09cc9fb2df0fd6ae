import Libvirt
import Testing

@testable import Backup

@Suite("Which disks a backup copies")
struct DiskSelectionTests {
    static func disk(
        _ target: String, device: DomainDisk.Device = .disk, type: DomainDisk.SourceType = .file,
        format: String? = "qcow2"
    ) -> DomainDisk {
        DomainDisk(target: target, device: device, type: type, format: format, sourcePath: "/images/\(target)")
    }

    @Test("every qcow2 file or block disk is chosen, in the domain's order")
    func chosen() {
        let selection = DiskSelection(
            disks: [Self.disk("vdb"), Self.disk("vda", type: .block)], only: [], excluded: [])
        #expect(selection.chosen.map(\.target) == ["vdb", "vda"])
        #expect(selection.skipped.isEmpty)
    }

    @Test("devices that are not disks, other formats and other sources are skipped, each saying why")
    func skippedWithReasons() {
        let selection = DiskSelection(
            disks: [
                Self.disk("vda"), Self.disk("sda", device: .cdrom, format: "raw"), Self.disk("vdb", format: "raw"),
                Self.disk("vdc", type: .network), Self.disk("fda", device: .floppy), Self.disk("vdd", format: nil),
            ],
            only: [], excluded: [])
        #expect(selection.chosen.map(\.target) == ["vda"])
        let reasons = Dictionary(uniqueKeysWithValues: selection.skipped.map { ($0.target, $0.reason) })
        #expect(reasons["sda"] == "it is a cdrom device, not a disk")
        #expect(reasons["fda"] == "it is a floppy device, not a disk")
        #expect(reasons["vdb"]?.hasPrefix("its format is raw,") == true)
        #expect(reasons["vdd"]?.hasPrefix("its format is unknown,") == true)
        #expect(reasons["vdc"] == "its source is of type network, not a file or block device")
        #expect(selection.skipped.map(\.target) == ["sda", "vdb", "vdc", "fda", "vdd"])
    }

    @Test("disks left out on purpose or not eligible are not missing; raw disks by default, lun and network ones are")
    func missing() {
        let disks = [
            Self.disk("vda"), Self.disk("sda", device: .cdrom, format: "raw"), Self.disk("fda", device: .floppy),
            Self.disk("vdb", format: "raw"), Self.disk("vdc", type: .network), Self.disk("sdb", device: .lun),
            Self.disk("vdd", format: "vmdk"), Self.disk("vde"),
        ]
        let byDefault = DiskSelection(disks: disks, only: [], excluded: ["vde"])
        #expect(byDefault.missing.map(\.target) == ["vdb", "vdc", "sdb", "vdd"])
        #expect(
            byDefault.warning(for: byDefault.missing[0])
                == "vdb is not in this backup: its format is raw, and only qcow2 disks keep the bitmaps incremental backups need; --raw-disks full copies it whole at every point, --exclude vdb leaves it out on purpose"
        )
        #expect(
            byDefault.warning(for: byDefault.missing[1])
                == "vdc is not in this backup: its source is of type network, not a file or block device; --exclude vdc leaves it out on purpose"
        )
        let skipping = DiskSelection(disks: disks, only: [], excluded: [], rawDisks: .skip)
        #expect(skipping.missing.map(\.target) == ["vdc", "sdb", "vdd"])
        #expect(skipping.skipped.first { $0.target == "vdb" }?.reason.contains("--raw-disks skip") == true)
        let named = DiskSelection(disks: disks, only: ["vda", "vdb"], excluded: [])
        #expect(named.missing.map(\.target) == ["vdb"])
        #expect(named.skipped.count == 7)
    }

    @Test("--raw-disks full is advised only where it would have the disk copied")
    func rawAdvice() {
        let network = Self.disk("vdc", type: .network, format: "raw")
        for (selection, target) in [
            (DiskSelection(disks: [network], only: [], excluded: [], rawDisks: .full), "vdc"),
            (DiskSelection(disks: [network], only: [], excluded: []), "vdc"),
            (DiskSelection(disks: [Self.disk("sdb", device: .lun, format: "raw")], only: [], excluded: []), "sdb"),
        ] {
            let missing = selection.missing.first { $0.target == target }
            #expect(missing.map { !selection.warning(for: $0).contains("--raw-disks") } == true, "\(selection)")
            #expect(!selection.nothingChosen.contains("--raw-disks full"), "\(selection.nothingChosen)")
        }
    }

    @Test("--disk and --exclude naming a disk the domain does not have are refused, naming its disks")
    func unknownNamed() throws {
        let disks = [Self.disk("vda"), Self.disk("vdb")]
        try DiskSelection.checkNamed(["vdb", "vda"], option: "--disk", in: disks, of: "ux2")
        do {
            try DiskSelection.checkNamed(["vda", "vdz"], option: "--exclude", in: disks, of: "ux2")
            Issue.record("vdz was accepted")
        } catch {
            #expect(error.message == "the domain ux2 has no disk vdz; its disks are vda, vdb (--exclude)")
        }
    }

    @Test("--disk keeps only the named disks, --exclude leaves named disks out")
    func onlyAndExcluded() {
        let disks = ["vda", "vdb", "vdc"].map { Self.disk($0) }
        let only = DiskSelection(disks: disks, only: ["vdb"], excluded: [])
        #expect(only.chosen.map(\.target) == ["vdb"])
        #expect(only.skipped.map(\.reason) == ["not among the --disk options", "not among the --disk options"])

        let excluded = DiskSelection(disks: disks, only: [], excluded: ["vda", "vdc"])
        #expect(excluded.chosen.map(\.target) == ["vdb"])
        #expect(excluded.skipped.map(\.target) == ["vda", "vdc"])
        #expect(excluded.skipped.allSatisfy { $0.reason == "excluded with --exclude" })
    }

    @Test("a named disk that is not eligible is skipped all the same")
    func onlyIneligible() {
        let selection = DiskSelection(
            disks: [Self.disk("vda", format: "raw")], only: ["vda"], excluded: [])
        #expect(selection.chosen.isEmpty)
        #expect(selection.skipped.first?.reason.hasPrefix("its format is raw") == true)
    }

    @Test("--raw-disks full chooses raw disks too, as disks without bitmaps; other formats stay skipped")
    func rawDisksFull() {
        let disks = [Self.disk("vda"), Self.disk("vdb", format: "raw"), Self.disk("vdc", format: "vmdk")]
        let selection = DiskSelection(disks: disks, only: [], excluded: ["vdd"], rawDisks: .full)
        #expect(selection.chosen.map(\.target) == ["vda", "vdb"])
        #expect(selection.withoutBitmaps == ["vdb"])
        #expect(selection.skipped.map(\.target) == ["vdc"])
        let excluded = DiskSelection(disks: disks, only: [], excluded: ["vdb"], rawDisks: .full)
        #expect(excluded.chosen.map(\.target) == ["vda"] && excluded.withoutBitmaps.isEmpty)
        let skipped = DiskSelection(disks: disks, only: [], excluded: [])
        #expect(skipped.chosen.map(\.target) == ["vda"] && skipped.withoutBitmaps.isEmpty)
    }
}
