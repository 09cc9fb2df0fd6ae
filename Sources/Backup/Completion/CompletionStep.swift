import Libvirt

/// Shell completion's error mapping: how the failures of the layers it calls become its ``BackupError``s. Each use case has its
/// own, so that one can word or classify its failures differently without touching another's.
enum CompletionStep {
    /// `body`'s result, or its libvirt error as a ``BackupError``.
    static func libvirt<T>(_ body: () async throws(LibvirtError) -> T) async throws(BackupError) -> T {
        do { return try await body() } catch { throw BackupError(error) }
    }
}
