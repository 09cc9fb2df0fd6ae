import Foundation
import Synchronization

/// One thread of its own on which every long-running child's Subprocess task runs (`Task(executorPreference:)`).
///
/// `ChildProcess.start()` is synchronous (tests write `let copy = try Pullback.startCopy(...)`) and waits until the
/// child has been spawned. Waiting on Swift's cooperative pool for work that needs that same pool can starve it (it is
/// as wide as the machine has cores, two here); work on this thread never waits for the pool, so the blocking wait
/// is safe.
final class ProcessThread: TaskExecutor, Sendable {
    static let shared = ProcessThread()

    private let jobs = Mutex<[UnownedJob]>([])
    private let available = DispatchSemaphore(value: 0)

    private init() {
        let thread = Thread { [self] in
            while true {
                available.wait()
                let job = jobs.withLock { $0.removeFirst() }
                job.runSynchronously(on: asUnownedTaskExecutor())
            }
        }
        thread.name = "test-children"
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        jobs.withLock { $0.append(unowned) }
        available.signal()
    }
}
