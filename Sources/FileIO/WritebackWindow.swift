import DequeModule
import Synchronization
import SystemPackage

/// Keeps what a copy writes from piling up in the page cache, as nbdcopy does: each write's pages go to the disk at
/// once, and once `limit` bytes more were written after them, the copy waits until they are on the disk and drops
/// them from the cache.
///
/// Without it, a copy of a large disk fills the page cache with dirty pages, which the kernel then writes back in
/// bursts while the copy waits, and with clean pages nobody reads again, which evict the pages other programs
/// (QEMU serving the export) need. The data is not durable before the final fsync either way.
package final class WritebackWindow: Sendable {
    private struct Range {
        var offset: UInt64
        var length: Int
    }

    private struct State {
        /// Ranges written but not yet waited for, oldest first.
        var ranges: Deque<Range> = []
        var bytes = 0
    }

    private let limit: Int
    private let state = Mutex(State())

    /// Keeps at most `limit` bytes of writes in flight to the disk before waiting for the oldest.
    package init(limit: Int = 8 << 20) {
        self.limit = limit
    }

    /// Starts writing `length` bytes at `offset`, just written through `descriptor`, to the disk; waits for and
    /// drops the oldest ranges while more than `limit` bytes are in flight.
    package func wrote(at offset: UInt64, length: Int, on descriptor: FileDescriptor) {
        descriptor.startWriteback(at: offset, length: length)
        let settled = state.withLock { state -> [Range] in
            state.ranges.append(Range(offset: offset, length: length))
            state.bytes += length
            var settled: [Range] = []
            while state.bytes > limit, let oldest = state.ranges.popFirst() {
                settled.append(oldest)
                state.bytes -= oldest.length
            }
            return settled
        }
        for range in settled {
            descriptor.finishWriteback(at: range.offset, length: range.length)
            descriptor.advise(.dontNeed, at: range.offset, length: range.length)
        }
    }
}
