import Synchronization

/// A fixed set of equal, page-aligned buffers, allocated once and reused for every request.
///
/// The pool is what bounds a copy's memory: a request needs a buffer, and there are as many buffers as
/// requests may be in flight. Reusing them also spares a fresh allocation and its page faults per request.
final class BufferPool: @unchecked Sendable {  // each slot is used by one task at a time; the free list is locked
    let bufferSize: Int
    let count: Int
    private let memory: UnsafeMutableRawBufferPointer
    private let free: Mutex<[Int]>

    init(count: Int, bufferSize: Int) {
        precondition(count > 0 && bufferSize > 0, "a buffer pool needs at least one non-empty buffer")
        self.count = count
        self.bufferSize = bufferSize
        memory = .allocate(byteCount: count * bufferSize, alignment: 4096)
        free = Mutex(Array((0..<count).reversed()))
    }

    deinit {
        memory.deallocate()
    }

    /// Takes a buffer of `length` bytes; call ``give(_:)`` with its slot when done. There is always one,
    /// because callers never have more requests in flight than the pool has buffers.
    func take(length: Int) -> (slot: Int, buffer: UnsafeMutableRawBufferPointer) {
        precondition(length <= bufferSize, "request of \(length) bytes exceeds the pool's buffers of \(bufferSize)")
        guard let slot = free.withLock({ $0.popLast() }) else {
            preconditionFailure("more requests in flight than buffers")
        }
        let start = slot * bufferSize
        return (slot, UnsafeMutableRawBufferPointer(rebasing: memory[start..<start + length]))
    }

    func give(_ slot: Int) {
        free.withLock { $0.append(slot) }
    }
}
