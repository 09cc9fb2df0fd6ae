import NIOPosix

/// A layer's typed error, which also says why blocking work could not run at all.
package protocol BlockingWorkFailure: Error {
    /// The task was cancelled (SIGINT, SIGTERM) before the work started.
    static func interrupted() -> Self
    /// NIO's thread pool is shut down, so the work cannot run.
    static func threadPoolUnavailable(_ error: any Error) -> Self
}

/// File work that blocks (pread and pwrite, fsync, opening a chain, removing a folder of large images) runs on
/// NIO's I/O thread pool, never on Swift's cooperative pool, whose few threads the copy's tasks need.
package enum BlockingWork {
    /// Runs `body` on the shared I/O thread pool and returns its result, or throws its error unchanged.
    package static func run<T: Sendable, Failure: BlockingWorkFailure>(
        _ body: @escaping @Sendable () throws(Failure) -> T
    ) async throws(Failure) -> T {
        try await run(on: .singleton, body)
    }

    /// Runs `body`, blocking work that waits on the network rather than on a disk (a ranged read of an object store),
    /// on a pool of its own with more threads than cores: each thread mostly waits for an answer, and the shared
    /// pool, one thread per core, would keep only that many requests in flight.
    package static func runWaitingOnNetwork<T: Sendable, Failure: BlockingWorkFailure>(
        _ body: @escaping @Sendable () throws(Failure) -> T
    ) async throws(Failure) -> T {
        try await run(on: networkPool, body)
    }

    /// The pool of ``runWaitingOnNetwork(_:)``: started once, for the life of the process, as NIO's own singleton.
    private static let networkPool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 16)
        pool.start()
        return pool
    }()

    /// Runs `body` on `pool`, as ``run(_:)`` does on the shared pool.
    static func run<T: Sendable, Failure: BlockingWorkFailure>(
        on pool: NIOThreadPool, _ body: @escaping @Sendable () throws(Failure) -> T
    ) async throws(Failure) -> T {
        do {
            return try await pool.runIfActive { () throws -> T in try body() }
        } catch let error as Failure {
            throw error
        } catch is CancellationError {
            throw Failure.interrupted()
        } catch {
            throw Failure.threadPoolUnavailable(error)
        }
    }
}

/// A pointer that crosses to a thread-pool thread while its owner awaits the call.
package struct Borrowed<Pointer>: @unchecked Sendable {  // the owner keeps the memory alive until the call returns
    package let pointer: Pointer

    package init(pointer: Pointer) { self.pointer = pointer }
}
