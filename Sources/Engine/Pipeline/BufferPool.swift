import DequeModule
import Synchronization

/// A fixed set of equal, page-aligned buffers, allocated once and reused for every read request, shared by every
/// copy that is given the pool.
///
/// The pool is what bounds memory: a read request needs a buffer, and a copy waits for one when all are in use.
/// Give one pool to the copies of all the disks of a backup, and the backup's buffers stay the same whatever the
/// number of disks, while a disk with much to copy takes the buffers a finished one no longer needs. Reusing
/// buffers also spares a fresh allocation and its page faults per request.
public final class BufferPool: @unchecked Sendable {  // a slot's memory is used by its one holder; state is locked
    /// Bytes per buffer: the largest request a copy with this pool makes.
    public let bufferSize: Int
    /// Buffers in the pool: the most read requests in flight over all copies sharing it.
    public let count: Int
    private let memory: UnsafeMutableRawBufferPointer
    private let state: Mutex<State>

    private struct State {
        var free: [Int]
        /// Copies waiting for a buffer, first come first served.
        var waiting: Deque<Waiter> = []
        var nextWaiter: UInt64 = 0
    }

    private struct Waiter {
        var id: UInt64
        var continuation: CheckedContinuation<Int, any Error>
    }

    /// A pool of `count` buffers of `bufferSize` bytes each.
    public init(count: Int, bufferSize: Int) {
        precondition(count > 0 && bufferSize > 0, "a buffer pool needs at least one non-empty buffer")
        self.count = count
        self.bufferSize = bufferSize
        memory = .allocate(byteCount: count * bufferSize, alignment: 4096)
        state = Mutex(State(free: Array((0..<count).reversed())))
    }

    deinit {
        memory.deallocate()
    }

    /// A buffer of the pool, held until ``give(_:)``.
    struct Buffer: @unchecked Sendable {  // the memory belongs to this holder alone until it is given back
        let slot: Int
        let bytes: UnsafeMutableRawBufferPointer
    }

    /// Takes a buffer of `length` bytes, waiting for one while all are taken; give it back with ``give(_:)``.
    /// Throws `CancellationError` when the task is cancelled while it waits.
    func take(length: Int) async throws -> Buffer {
        precondition(length <= bufferSize, "request of \(length) bytes exceeds the pool's buffers of \(bufferSize)")
        let slot: Int
        if let free = state.withLock({ $0.free.popLast() }) {
            slot = free
        } else {
            slot = try await waitForSlot()
        }
        let start = slot * bufferSize
        return Buffer(slot: slot, bytes: UnsafeMutableRawBufferPointer(rebasing: memory[start..<start + length]))
    }

    /// Gives `buffer` back: to the copy that waited longest for one, else to the pool.
    func give(_ buffer: Buffer) {
        let waiter = state.withLock { state -> Waiter? in
            if let waiter = state.waiting.popFirst() { return waiter }
            state.free.append(buffer.slot)
            return nil
        }
        waiter?.continuation.resume(returning: buffer.slot)
    }

    private func waitForSlot() async throws -> Int {
        let id = state.withLock { state in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                // Decided under the lock, so that a buffer given back or a cancellation meanwhile is not missed:
                // the handler below runs after the task is marked cancelled, and takes the same lock.
                let outcome = state.withLock { state -> Result<Int, any Error>? in
                    if let free = state.free.popLast() { return .success(free) }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    state.waiting.append(Waiter(id: id, continuation: continuation))
                    return nil
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> Waiter? in
                guard let index = state.waiting.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiting.remove(at: index)
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
    }
}
