import Foundation
import Libvirt
import QCOW2

/// What a run has settled before it makes a point: the domain, what it was at the start (uuid, XML), and
/// which of its disks are copied.
struct PreparedBackup: Sendable {
    var request: BackupRequest
    var domain: Domain
    var uuid: String
    /// The domain's XML at the start of the run, saved with the point.
    var domainXML: String
    var selection: DiskSelection
    /// When the run started: the point's id comes from it.
    var started: Date
    /// Whether the run started the domain (paused) for the backup, and shuts it off again after.
    var startedDomain = false
    /// The host the hypervisor exports on over TCP, for a remote libvirt URI; nil exports on a unix socket here.
    var exportHost: String?
    /// Whether the run reads each disk in full to check the point against it (`--check-source`).
    var checksSource = false
    /// How the point's images store their clusters: as asked, else as the domain's newest point does.
    var compression: ClusterCompression = .none

    /// Reads the domain's uuid, XML and disks, and chooses the disks `request` asks for. Throws when `--disk` or
    /// `--exclude` names a disk the domain does not have, and when no disk is left to back up, saying why each was
    /// left out.
    static func read(_ domain: Domain, for request: BackupRequest, started: Date) async throws(BackupError)
        -> PreparedBackup
    {
        let (uuid, domainXML, disks) = try await RunStep.libvirt { () async throws(LibvirtError) in
            (try await domain.uuid(), try await domain.xmlDescription(), try await domain.disks())
        }
        try DiskSelection.checkNamed(request.disks, option: "--disk", in: disks, of: request.domain)
        try DiskSelection.checkNamed(request.excluded, option: "--exclude", in: disks, of: request.domain)
        let selection = DiskSelection(
            disks: disks, only: request.disks, excluded: request.excluded, rawDisks: request.rawDisks)
        guard !selection.chosen.isEmpty else {
            throw BackupError(
                .invalidRequest, "\(request.domain) has no disk to back up: \(selection.nothingChosen)")
        }
        return PreparedBackup(
            request: request, domain: domain, uuid: uuid, domainXML: domainXML, selection: selection,
            started: started)
    }
}
