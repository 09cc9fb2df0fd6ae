import Libvirt

/// The domains of a libvirt connection by name, as a shell completes a DOMAIN argument with them.
public enum DomainListing {
    /// The names of every domain of `connectURI` (the default connection when nil), running or only defined, sorted.
    public static func names(connectURI: String?) async throws(BackupError) -> [String] {
        let connection = try await BackupRun.libvirtStep { () async throws(LibvirtError) in
            try await LibvirtConnection.open(uri: connectURI)
        }
        do throws(BackupError) {
            let names = try await BackupRun.libvirtStep { () async throws(LibvirtError) in
                try await connection.domainNames()
            }
            await connection.close()
            return names.sorted()
        } catch {
            await connection.close()
            throw error
        }
    }
}
