import Libvirt
import Repository

/// A backup run's error mapping: how the failures of the layers it calls become its ``BackupError``s. Each use case has its
/// own, so that one can word or classify its failures differently without touching another's.
enum RunStep {
    /// `body`'s result, or its libvirt error as a ``BackupError``.
    static func libvirt<T>(_ body: () async throws(LibvirtError) -> T) async throws(BackupError) -> T {
        do { return try await body() } catch { throw BackupError(error) }
    }

    /// `body`'s result, or its repository error as a ``BackupError``.
    static func repository<T>(_ body: () throws(RepositoryError) -> T) throws(BackupError) -> T {
        do { return try body() } catch { throw BackupError(error) }
    }

    /// `body`'s result, or what it threw as a ``BackupError`` (``BackupError/init(thrownBy:)``): the repository's
    /// new point takes a body that may throw anything.
    static func transaction<T>(_ body: () async throws -> T) async throws(BackupError) -> T {
        do { return try await body() } catch { throw BackupError(thrownBy: error) }
    }
}
