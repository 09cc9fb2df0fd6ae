import Foundation
import Libvirt
import Synchronization
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A private root for libvirt's embedded QEMU driver (`qemu:///embed?root=DIR`), with the qemu.conf that
/// running as root needs (`TestGuest.embeddedQemuConf`), and a connection to it. ``withEmbeddedLibvirt(_:)`` tears it all down.
struct EmbeddedLibvirt {
    let root: String
    let connection: LibvirtConnection

    var uri: String { "qemu:///embed?root=\(root)" }

    /// Creates a short root under /tmp (unix socket paths are limited to 108 bytes) and a private 0700
    /// directory in it for backup sockets and scratch files.
    static func makeRoot() throws -> String {
        let root = try TemporaryDirectory.make("pbv")
        try FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
        try TestGuest.embeddedQemuConf.write(toFile: root + "/etc/qemu.conf", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(
            atPath: root + "/b", withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        return root
    }
}

/// The process's embedded libvirt. libvirt runs one embedded QEMU driver per process and refuses a second
/// root ("already open with path ..."), even after the first connection is closed, so every test shares one
/// root and connection; the root is removed when the process exits.
private actor SharedEmbeddedLibvirt {
    static let shared = SharedEmbeddedLibvirt()
    private var environment: EmbeddedLibvirt?

    func get() async throws -> EmbeddedLibvirt {
        if let environment { return environment }
        let root = try EmbeddedLibvirt.makeRoot()
        rootToRemove.withLock { $0 = root }
        atexit {
            if let root = rootToRemove.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: root) }
        }
        let connection = try await LibvirtConnection.open(uri: "qemu:///embed?root=\(root)")
        let environment = EmbeddedLibvirt(root: root, connection: connection)
        self.environment = environment
        return environment
    }
}

private let rootToRemove = Mutex<String?>(nil)

/// Runs `body` against the process's embedded libvirt, then destroys and undefines every guest and empties
/// the backup directory, whether `body` succeeded or not.
func withEmbeddedLibvirt(_ body: (EmbeddedLibvirt) async throws -> Void) async throws {
    let environment = try await SharedEmbeddedLibvirt.shared.get()
    let connection = environment.connection
    var failure: (any Error)?
    do {
        try await body(environment)
    } catch {
        failure = error
    }
    for name in (try? await connection.domainNames()) ?? [] {
        guard let domain = try? await connection.domain(named: name) else { continue }
        if let state = try? await domain.state(), state != .shutOff {
            _ = try? await domain.abortJob()
            _ = try? await domain.destroy()
        }
        _ = try? await domain.undefine(removingCheckpointMetadata: true)
    }
    let backupDirectory = environment.root + "/b"
    for file in (try? FileManager.default.contentsOfDirectory(atPath: backupDirectory)) ?? [] {
        try? FileManager.default.removeItem(atPath: backupDirectory + "/" + file)
    }
    for file in ["vda.qcow2", "vdb.qcow2"] {
        try? FileManager.default.removeItem(atPath: environment.root + "/" + file)
    }
    if let failure { throw failure }
}
