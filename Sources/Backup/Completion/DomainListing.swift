import Libvirt

/// The domains of a libvirt connection by name, as a shell completes a DOMAIN argument with them.
public enum DomainListing {
    /// How long a completion waits for libvirt before offering nothing: a TAB must not hang on a server that
    /// accepts and never answers.
    public static let completionTimeLimit = Duration.seconds(2)

    /// The names of every domain of `connectURI` (the default connection when nil), running or only defined, sorted.
    public static func names(connectURI: String?) async throws(BackupError) -> [String] {
        let connection = try await CompletionStep.libvirt { () async throws(LibvirtError) in
            try await LibvirtConnection.open(uri: connectURI)
        }
        do throws(BackupError) {
            let names = try await CompletionStep.libvirt { () async throws(LibvirtError) in
                try await connection.domainNames()
            }
            await connection.close()
            return names.sorted()
        } catch {
            await connection.close()
            throw error
        }
    }

    /// The ``names(connectURI:)`` a shell completion may offer (``CompletionCandidates``): none when the URI's
    /// transport may prompt or run a program (``CompletionConnection``), when anything fails, or when libvirt has not
    /// answered within `limit`; the libvirt call then goes on on its worker thread, and the caller may exit.
    public static func completionNames(
        connectURI: String?, within limit: Duration = completionTimeLimit
    ) async -> [String] {
        guard CompletionConnection.mayConnect(to: connectURI) else { return [] }
        let found = await FirstResult.of({ (try? await names(connectURI: connectURI)) ?? [] }, within: limit, else: [])
        return CompletionCandidates.offerable(found)
    }
}
