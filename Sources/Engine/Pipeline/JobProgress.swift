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
    /// The step the job says it is at, when that is not counting parts' bytes.
    private let phase = Mutex<JobPhase?>(nil)

    public init() {}

    /// Says how many parts the job has: until then the job is preparing, and its total is known only once every
    /// part has begun and mapped what it reads.
    public func expect(parts count: Int) {
        phase.withLock { $0 = nil }
        expected.store(count, ordering: .relaxed)
    }

    /// Says that the job is at `step`, in which no bytes are counted, until ``expect(parts:)`` or another step.
    public func enter(_ step: JobPhase) {
        phase.withLock { $0 = step }
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
            let (expected, step) = (expected.load(ordering: .relaxed), phase.withLock { $0 })
            guard expected >= 0 || step != nil else {
                return ProgressSnapshot(bytesDone: 0, bytesToDo: nil, phase: .preparing)
            }
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
                bytesDone: done, bytesToDo: total, running: parts.filter { !$0.finished }.map(\.name), phase: step)
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
    /// The step the job is at when it is not counting bytes (getting ready, starting or ending a backup job,
    /// committing); nil while its parts count bytes.
    public var phase: JobPhase?

    /// Whether the job is still getting ready, before it knows its parts.
    public var isPreparing: Bool { phase == .preparing }

    /// Creates a snapshot.
    public init(bytesDone: UInt64, bytesToDo: UInt64?, running: [String] = [], phase: JobPhase? = nil) {
        self.bytesDone = bytesDone
        self.bytesToDo = bytesToDo
        self.running = running
        self.phase = phase
    }
}

/// A step of a job in which no bytes move, for a progress bar to name instead of showing 0 of 0 bytes.
public enum JobPhase: Sendable, Equatable {
    /// Reading what the job needs before it knows its parts.
    case preparing
    /// Starting a shut-off domain paused, so that QEMU can export its disks.
    case startingDomain
    /// Asking libvirt to begin the backup job.
    case startingJob
    /// Asking libvirt to end the backup job.
    case endingJob
    /// Reading back images whose digests were not taken as they were written.
    case checkingDigests
    /// Committing the new point to the repository.
    case committing
    /// Shutting off again a domain the job started.
    case stoppingDomain
}

extension CopyProgress {
    /// This copy's progress alone.
    public var snapshot: ProgressSnapshot { ProgressSnapshot(bytesDone: bytesRead, bytesToDo: bytesToCopy) }
}
