import Synchronization

/// Progress of a job made of several copies or reads (a backup's disks, a restore's images, a verify's images),
/// for one progress bar: bytes done of bytes to do across all parts, and which parts are running.
///
/// Each part counts into a ``CopyProgress`` of its own, made by ``start(_:)``; the job reads them all when asked
/// for a ``snapshot``, so the parts pay nothing for being watched.
public final class JobProgress: Sendable {
    private struct Part: Sendable {
        var name: String
        var counters: CopyProgress
        var finished = false
    }

    private let parts = Mutex<[Part]>([])
    /// The parts the job has, once it says (-1 until then).
    private let expected = Atomic<Int>(-1)

    public init() {}

    /// Says how many parts the job has: until then the job is preparing, and its total is known only once every
    /// part has begun and mapped what it reads.
    public func expect(parts count: Int) {
        expected.store(count, ordering: .relaxed)
    }

    /// The counters of a new part, `name` (a disk target); it is running until ``finish(_:)``.
    public func start(_ name: String) -> CopyProgress {
        let counters = CopyProgress()
        parts.withLock { $0.append(Part(name: name, counters: counters)) }
        return counters
    }

    /// Marks the part counting into `counters` as done.
    public func finish(_ counters: CopyProgress) {
        parts.withLock { parts in
            for index in parts.indices where parts[index].counters === counters { parts[index].finished = true }
        }
    }

    /// The job's progress now.
    public var snapshot: ProgressSnapshot {
        parts.withLock { parts in
            var done: UInt64 = 0
            let expected = expected.load(ordering: .relaxed)
            guard expected >= 0 else { return ProgressSnapshot(bytesDone: 0, bytesToDo: nil, isPreparing: true) }
            var total: UInt64? = parts.count >= expected ? 0 : nil
            for part in parts {
                done += part.counters.bytesRead
                if let known = total, let bytes = part.counters.bytesToCopy {
                    total = known + bytes
                } else {
                    total = nil
                }
            }
            return ProgressSnapshot(
                bytesDone: done, bytesToDo: total, running: parts.filter { !$0.finished }.map(\.name))
        }
    }
}

/// Where a job or a copy stands, as a progress bar draws it.
public struct ProgressSnapshot: Sendable, Equatable {
    /// Bytes read so far.
    public var bytesDone: UInt64
    /// Bytes the whole job reads, once known.
    public var bytesToDo: UInt64?
    /// The parts still running (disk targets), in the order they began.
    public var running: [String]
    /// Whether the job is still getting ready (a backup's libvirt job), before it knows its parts.
    public var isPreparing: Bool

    /// Creates a snapshot.
    public init(bytesDone: UInt64, bytesToDo: UInt64?, running: [String] = [], isPreparing: Bool = false) {
        self.bytesDone = bytesDone
        self.bytesToDo = bytesToDo
        self.running = running
        self.isPreparing = isPreparing
    }
}

extension CopyProgress {
    /// This copy's progress alone.
    public var snapshot: ProgressSnapshot { ProgressSnapshot(bytesDone: bytesRead, bytesToDo: bytesToCopy) }
}
