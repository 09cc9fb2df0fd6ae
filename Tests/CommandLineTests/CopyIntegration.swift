import Testing

/// Integration tests of `pullback copy` against real NBD servers (qemu-nbd, nbdkit), and of the commands on guests of
/// the embedded libvirt driver.
///
/// A serialized root suite: the tests start servers, mount tmpfs and interrupt copies on timers, and on two cores
/// they are steadier one at a time. `BackupIntegration`, the other serialized root, runs beside this one, so at most
/// two of these tests run at once. Each test owns a `Fixture` (temporary directory, servers, mounts) that is torn
/// down even when the test fails.
@Suite("pullback copy", .serialized)
enum CopyIntegration {}

/// Binary size units (KiB, MiB) for the tests.
let kib = 1024
let mib = 1024 * 1024
