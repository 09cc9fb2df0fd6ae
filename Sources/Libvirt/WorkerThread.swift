import Foundation
import Synchronization

/// A thread of our own that runs blocking libvirt calls one after another.
///
/// libvirt calls block (on the daemon's RPC or on QEMU's monitor), so they never run on Swift's cooperative
/// pool: tasks queue a call here and wait on a continuation the thread resumes. One call runs at a time,
/// start to finish on this thread, so libvirt's per-thread last error always belongs to the call that failed.
final class WorkerThread: Sendable {
    private struct State {
        var jobs: [@Sendable () -> Void] = []
        var stopping = false
    }

    private let state = Mutex(State())
    private let wakeup = DispatchSemaphore(value: 0)

    init(name: String) {
        let thread = Thread { [self] in run() }
        thread.name = name
        thread.start()
    }

    /// Runs `body` on the thread and returns its result, or throws `closedError` when the thread stopped.
    func run<T: Sendable>(
        closedError: LibvirtError, _ body: @escaping @Sendable () throws(LibvirtError) -> T
    ) async throws(LibvirtError) -> T {
        let result: Result<T, LibvirtError> = await withCheckedContinuation { continuation in
            let accepted = enqueue {
                continuation.resume(returning: Result { () throws(LibvirtError) in try body() })
            }
            if !accepted { continuation.resume(returning: .failure(closedError)) }
        }
        return try result.get()
    }

    /// Queues `job`; returns false when the thread is stopping and will not run it.
    @discardableResult
    func enqueue(_ job: @escaping @Sendable () -> Void) -> Bool {
        let accepted = state.withLock { state in
            if state.stopping { return false }
            state.jobs.append(job)
            return true
        }
        if accepted { wakeup.signal() }
        return accepted
    }

    /// Runs `last` after every job already queued, refuses new jobs, and ends the thread.
    func stop(after last: @escaping @Sendable () -> Void) {
        let accepted = state.withLock { state in
            if state.stopping { return false }
            state.jobs.append(last)
            state.stopping = true
            return true
        }
        if accepted { wakeup.signal() }
    }

    private func run() {
        while true {
            wakeup.wait()
            let (job, finished) = state.withLock { state -> ((@Sendable () -> Void)?, Bool) in
                let job = state.jobs.isEmpty ? nil : state.jobs.removeFirst()
                return (job, state.stopping && state.jobs.isEmpty)
            }
            job?()
            if finished { return }
        }
    }
}
