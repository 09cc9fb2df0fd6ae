import Libvirt

/// The domain through a connection that works, and its backup job ended exactly when it is ours. libvirtd may
/// restart while disks are copied (a package upgrade): QEMU, the backup job and its NBD exports outlive it, but
/// the connection does not, and a job that nobody ends makes every later backup of the domain refuse.
extension Domain {
    /// This domain if its connection still works, else the same domain through a new connection.
    func live() async throws(LibvirtError) -> Domain {
        if await connection.isAlive() { return self }
        return try await reopened()
    }

    /// Whether the domain's backup job is the one exporting on `address`; false when it has none (or is not
    /// running).
    func runsBackupJob(exporting address: ExportAddress) async throws(LibvirtError) -> Bool {
        // A shut-off domain has no job; libvirt's error for asking it varies.
        if try await state() == .shutOff { return false }
        do {
            let xml = try await backupXML()
            return address.isNamed(in: xml)
        } catch  where error.code == .noBackupJob || error.code == .operationInvalid {
            return false
        }
    }

    /// Ends the backup job exporting on `address`, if it still runs: through a new connection if this one was lost,
    /// and never another job (another repository's or tool's, begun after ours ended). It runs to the end even
    /// when the calling task is cancelled: a job left behind blocks the domain's backups.
    func endBackupJob(exporting address: ExportAddress) async throws(LibvirtError) {
        let outcome = await Task { () async -> Result<Void, LibvirtError> in
            do throws(LibvirtError) {
                try await self.endBackupJobNow(exporting: address)
                return .success(())
            } catch {
                return .failure(error)
            }
        }.value
        try outcome.get()
    }

    private func endBackupJobNow(exporting address: ExportAddress) async throws(LibvirtError) {
        let domain = try await live()
        do {
            guard try await domain.runsBackupJob(exporting: address) else { return }
            try await domain.abortJob()
        } catch {
            guard await !domain.connection.isAlive() else { throw error }
            let again = try await domain.reopened()
            guard try await again.runsBackupJob(exporting: address) else { return }
            try await again.abortJob()
        }
    }
}
