import Repository

/// What the use cases share about points (their chains)'s error mapping: how the failures of the layers it calls become its ``BackupError``s. Each use case has its
/// own, so that one can word or classify its failures differently without touching another's.
enum PointsStep {
    /// `body`'s result, or its repository error as a ``BackupError``.
    static func repository<T>(_ body: () throws(RepositoryError) -> T) throws(BackupError) -> T {
        do { return try body() } catch { throw BackupError(error) }
    }
}
