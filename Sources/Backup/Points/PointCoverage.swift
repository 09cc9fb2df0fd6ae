import Foundation
import Libvirt
import Repository

/// Which of the domain's disks a point lacks, from what the point recorded: the domain's XML it saved at backup time
/// (`domain.xml`) against the disks its manifest holds. Points of every version keep both, so no field is needed.
public enum PointCoverage {
    /// The targets of the domain's disks, when `point` was made, that the point does not hold, in the domain's order:
    /// disks left out on purpose and missing ones alike. cdrom and floppy drives, which a backup never copies, are
    /// not counted. Nil when the point keeps no domain XML that can be read and parsed, or one that is not parsed
    /// (``SavedDomainXML/refusal(of:)``).
    public static func lackedDisks(of point: BackupPoint) -> [String]? {
        // Every `list` reads this file: never one that could pull in the host's files (``SavedDomainXML``).
        guard let xml = try? point.savedFile("domain.xml"), SavedDomainXML.refusal(of: xml) == nil,
            let disks = try? DomainDisk.parse(domainXML: xml)
        else { return nil }
        let held = Set(point.manifest.disks.map(\.target))
        var lacked: [String] = []
        for disk in disks where disk.device != .cdrom && disk.device != .floppy && !held.contains(disk.target) {
            if !lacked.contains(disk.target) { lacked.append(disk.target) }
        }
        return lacked
    }
}
