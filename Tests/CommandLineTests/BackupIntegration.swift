import Testing

/// The second serialized root of the integration tests, run beside `CopyIntegration`: backups through a private
/// libvirtd (a VM or export disrupted, a remote hypervisor over TCP, a point in time, a live digest) and long chains
/// (many points, prune, checkpoints, synthetic fulls, resized disks).
///
/// Its suites run one at a time, as do those of `CopyIntegration`; the two roots run at the same time, so the
/// integration tests take about half as long. Every suite that takes TCP ports for libvirt or QEMU is here, so that no
/// two of them run at once. Each test owns its `Fixture`, its guest and, under a private libvirtd, a daemon in a mount
/// namespace of its own: nothing is shared with the other root.
@Suite("pullback backup: private libvirtd, long chains", .serialized)
enum BackupIntegration {
    // Helpers of suites under `CopyIntegration` that these suites use too.
    typealias BackupTests = CopyIntegration.BackupTests
    typealias BackupFailureTests = CopyIntegration.BackupFailureTests
    typealias ContentDigestCommandTests = CopyIntegration.ContentDigestCommandTests
}
