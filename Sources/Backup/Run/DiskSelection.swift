import Libvirt

/// Which of a domain's disks a backup copies, why the others are left out, and which of those were not left out on
/// purpose.
///
/// A disk is left out on purpose when the request says so: `--disk` names others, `--exclude` names it, or a raw
/// disk meets an explicit `--raw-disks skip`. cdrom and floppy drives hold removable media, not the domain's data,
/// and are never backed up. Every other disk left out is *missing*: a raw disk under the default policy, another
/// format, a lun, a network or volume source. A point made without a missing disk is partial, and says so.
struct DiskSelection: Equatable {
    var chosen: [DomainDisk]
    /// Every disk left out, with the reason, in the domain's order.
    var skipped: [BackupOutcome.Skipped]
    /// The skipped disks not left out on purpose, in the domain's order.
    var missing: [BackupOutcome.Skipped]
    /// The missing raw disks, which `--raw-disks full` would copy.
    private var missingRaw: Set<String>

    init(disks: [DomainDisk], only: [String], excluded: [String], rawDisks: RawDiskPolicy? = nil) {
        chosen = []
        skipped = []
        missing = []
        missingRaw = []
        for disk in disks {
            let (reason, intended): (String?, Bool) =
                if !only.isEmpty && !only.contains(disk.target) {
                    ("not among the --disk options", true)
                } else if excluded.contains(disk.target) {
                    ("excluded with --exclude", true)
                } else if disk.device != .disk {
                    ("it is a \(disk.device) device, not a disk", disk.device == .cdrom || disk.device == .floppy)
                } else if disk.format == "raw" && rawDisks == .skip {
                    ("its format is raw, and --raw-disks skip leaves raw disks out", true)
                } else if disk.format != "qcow2" && !(disk.format == "raw" && rawDisks == .full) {
                    (
                        "its format is \(disk.format ?? "unknown"), and only qcow2 disks keep the bitmaps incremental backups need",
                        false
                    )
                } else if disk.type != .file && disk.type != .block {
                    ("its source is of type \(disk.type), not a file or block device", false)
                } else {
                    (nil, true)
                }
            guard let reason else {
                chosen.append(disk)
                continue
            }
            let left = BackupOutcome.Skipped(target: disk.target, reason: reason)
            skipped.append(left)
            if !intended {
                missing.append(left)
                // Only where `--raw-disks full` would have it copied: not given yet, and nothing else in the way.
                if disk.format == "raw", rawDisks == nil, disk.device == .disk,
                    disk.type == .file || disk.type == .block
                {
                    missingRaw.insert(disk.target)
                }
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

    /// The line that says a missing disk is not backed up, and the ways to have it backed up or left out on purpose.
    func warning(for disk: BackupOutcome.Skipped) -> String {
        let raw = missingRaw.contains(disk.target) ? "\(Self.rawWayOut), " : ""
        return "\(disk.target) is not in this backup: \(disk.reason); \(raw)--exclude \(disk.target) leaves it out "
            + "on purpose"
    }

    /// Why no disk is chosen, each left-out disk with its reason: the facts, whether or not notes were printed.
    var nothingChosen: String {
        guard !skipped.isEmpty else { return "it has no disks" }
        return skipped.map {
            "\($0.target): \($0.reason)" + (missingRaw.contains($0.target) ? " (\(Self.rawWayOut))" : "")
        }.joined(separator: "; ")
    }

    private static let rawWayOut = "--raw-disks full copies it whole at every point"

    /// Refuses `--disk` and `--exclude` targets that `disks` do not have, naming the domain's disks.
    static func checkNamed(
        _ named: [String], option: String, in disks: [DomainDisk], of domain: String
    ) throws(BackupError) {
        let targets = disks.map(\.target)
        for target in named where !targets.contains(target) {
            let known = targets.isEmpty ? "it has no disks" : "its disks are \(targets.joined(separator: ", "))"
            throw BackupError(.invalidRequest, "the domain \(domain) has no disk \(target); \(known) (\(option))")
        }
    }
}
