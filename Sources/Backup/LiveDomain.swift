import Libvirt

/// The domain through a connection that works. libvirtd may restart while disks are copied (a package upgrade):
/// QEMU, the backup job and its NBD exports outlive it, but the connection does not, and a job that nobody ends
/// would make every later backup of the domain refuse.
extension Domain {
    /// This domain if its connection still works, else the same domain through a new connection.
    func live() async throws(LibvirtError) -> Domain {
        if await connection.isAlive() { return self }
        return try await reopened()
    }

    /// Ends the backup job (``Domain/abortJob(timeout:)``), again through a new connection if this one was lost
    /// before or during the call.
    func endJob() async throws(LibvirtError) {
        let domain = try await live()
        do {
            try await domain.abortJob()
        } catch {
            guard await !domain.connection.isAlive() else { throw error }
            try await domain.reopened().abortJob()
        }
    }
}
