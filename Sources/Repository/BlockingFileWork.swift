import NIOPosix

/// File work that blocks (fsync, removing a folder of large images) runs on NIO's I/O thread pool, never on
/// Swift's cooperative pool, whose few threads the copy's tasks need.
enum BlockingFileWork {
    static func run<T: Sendable>(
        _ body: @escaping @Sendable () throws(RepositoryError) -> T
    ) async throws(RepositoryError) -> T {
        do {
            return try await NIOThreadPool.singleton.runIfActive { () throws -> T in try body() }
        } catch let error as RepositoryError {
            throw error
        } catch is CancellationError {
            throw RepositoryError(.cancelled, "interrupted")
        } catch {
            throw RepositoryError(.io, "the I/O thread pool is not running: \(error)")
        }
    }
}
