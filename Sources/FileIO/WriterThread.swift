import NIOPosix

/// A thread of its own for one target file's writes, which it makes one at a time in the order they arrive.
///
/// Reads come from several connections at once, but writes into one file from several threads contend for
/// the file's inode lock: on two cores the waiting thread spins on the CPU the holder needs, and a copy spent
/// more time in the kernel than nbdcopy's whole run (perf: 18 % of samples in `rwsem_spin_on_owner`). Handing
/// the buffers to one thread per file keeps the reads parallel and the writes uncontended; several files still
/// write in parallel, each on its own thread. The queue needs no bound of its own: the copy's buffer pool
/// bounds the writes waiting in it.
package final class WriterThread: Sendable {
    private let pool: NIOThreadPool

    private init() {
        pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
    }

    /// Runs `body` with a writer thread that ends when `body` returns or throws, after the work queued on it.
    package static func with<Result, Failure: Error>(
        _ body: (WriterThread) async throws(Failure) -> Result
    ) async throws(Failure) -> Result {
        let thread = WriterThread()
        let result: Swift.Result<Result, Failure>
        do throws(Failure) { result = .success(try await body(thread)) } catch { result = .failure(error) }
        // Nothing is queued any more: every write was awaited inside `body`.
        try? await thread.pool.shutdownGracefully()
        return try result.get()
    }

    /// As ``with(_:)`` when `needed`; otherwise `body` runs with nil and no thread is started.
    package static func with<Result, Failure: Error>(
        if needed: Bool, _ body: (WriterThread?) async throws(Failure) -> Result
    ) async throws(Failure) -> Result {
        guard needed else { return try await body(nil) }
        return try await with { thread async throws(Failure) -> Result in try await body(thread) }
    }

    /// Runs `body` on this thread, after the work handed to it before, and returns its result.
    package func run<T: Sendable, Failure: BlockingWorkFailure>(
        _ body: @escaping @Sendable () throws(Failure) -> T
    ) async throws(Failure) -> T {
        try await BlockingWork.run(on: pool, body)
    }
}
