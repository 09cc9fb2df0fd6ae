import Libvirt

/// Which of a domain's disks a backup copies, and why the others are left out.
struct DiskSelection: Equatable {
    var chosen: [DomainDisk]
    var skipped: [BackupOutcome.Skipped]

    init(disks: [DomainDisk], only: [String], excluded: [String], rawDisks: RawDiskPolicy = .skip) {
        chosen = []
        skipped = []
        for disk in disks {
            let reason: String? =
                if !only.isEmpty && !only.contains(disk.target) {
                    "not among the --disk options"
                } else if excluded.contains(disk.target) {
                    "excluded with --exclude"
                } else if disk.device != .disk {
                    "it is a \(disk.device) device, not a disk"
                } else if disk.format != "qcow2" && !(disk.format == "raw" && rawDisks == .full) {
                    "its format is \(disk.format ?? "unknown"), and only qcow2 disks keep the bitmaps incremental backups need"
                } else if disk.type != .file && disk.type != .block {
                    "its source is of type \(disk.type), not a file or block device"
                } else {
                    nil
                }
            if let reason {
                skipped.append(BackupOutcome.Skipped(target: disk.target, reason: reason))
            } else {
                chosen.append(disk)
            }
        }
    }
}

extension DiskSelection {
    /// The chosen disks that carry no dirty bitmap (raw ones, with `--raw-disks full`): copied in full at every point,
    /// and left out of the checkpoint.
    var withoutBitmaps: Set<String> {
        Set(chosen.filter { $0.format != "qcow2" }.map(\.target))
    }
}
