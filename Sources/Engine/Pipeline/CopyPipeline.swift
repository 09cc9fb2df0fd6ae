/// Moves data from a block source to a block target: maps the source a window at a time, plans each
/// window, and runs the plan's requests concurrently with a bounded number in flight.
///
/// Memory is bounded whatever the source's size: the buffers of its ``BufferPool`` (`requestsInFlight ×
/// requestSize` bytes unless copies share a pool), plus the extents of one window.
public struct CopyPipeline: Sendable {
    /// Bytes per read request.
    public var requestSize: Int
    /// Requests in flight at most, over all connections.
    public var requestsInFlight: Int
    /// How much of the source is mapped (block status) and planned at a time.
    public var windowSize: UInt64
    /// Whether to map the whole source before copying, so that progress knows the total.
    public var measureTotal: Bool
    /// The buffers to read into, shared with other copies running at the same time (the disks of one backup), or
    /// nil for a pool of this copy's own. Requests are no larger than its buffers.
    public var buffers: BufferPool?
    /// The limit that every read of the source waits for, shared with the other copies of a run, or nil for none.
    public var rateLimiter: ByteRateLimiter?

    public init(
        requestSize: Int, requestsInFlight: Int, windowSize: UInt64 = 1 << 30, measureTotal: Bool = false,
        buffers: BufferPool? = nil, rateLimiter: ByteRateLimiter? = nil
    ) {
        self.requestSize = requestSize
        self.requestsInFlight = requestsInFlight
        self.windowSize = windowSize
        self.measureTotal = measureTotal
        self.buffers = buffers
        self.rateLimiter = rateLimiter
    }

    /// Copies `source` to `target` in `mode`, counting into `progress`.
    public func run(
        from source: some BlockSource, to target: some BlockTarget, mode: CopyMode, progress: CopyProgress
    ) async throws(CopyError) {
        // Whole units of the target per request, and no more than the source accepts or a buffer holds.
        let unit = target.granularity
        let limit = min(requestSize, source.maximumReadSize, buffers?.bufferSize ?? .max)
        let requestSize = max(unit, limit / unit * unit)
        let pool = buffers ?? BufferPool(count: max(1, requestsInFlight), bufferSize: requestSize)
        guard requestSize <= pool.bufferSize else {
            throw CopyError(
                .unsupported,
                "the shared buffers hold \(pool.bufferSize) bytes, less than the target's unit of \(unit) bytes")
        }
        do {
            if measureTotal {
                progress.setTotal(
                    try await bytesToCopy(
                        in: source, mode: mode, requestSize: requestSize, granularity: unit,
                        previousEnd: target.previousEnd))
            }
            try await copyWindows(
                from: source, to: target, mode: mode, requestSize: requestSize, pool: pool, progress: progress)
        } catch {
            // Once cancelled, whatever failed first (a dropped connection, a refused write) is a consequence.
            if Task.isCancelled || error is CancellationError { throw CopyError(.interrupted, "interrupted") }
            if let error = error as? CopyError { throw error }
            throw CopyError(.source, "copy failed: \(error)")
        }
    }

    /// Maps the whole source first, for a progress total.
    private func bytesToCopy(
        in source: some BlockSource, mode: CopyMode, requestSize: Int, granularity: Int, previousEnd: UInt64?
    ) async throws(CopyError) -> UInt64 {
        var total: UInt64 = 0
        for window in windows(of: source.size) {
            let extents = try await source.extents(in: window)
            total +=
                ExtentPlan(
                    extents: extents, mode: mode, requestSize: requestSize, granularity: granularity,
                    previousEnd: previousEnd
                ).copyBytes
        }
        return total
    }

    /// Plans one window at a time and runs its requests, at most `requestsInFlight` at once, each read into a
    /// buffer of `pool` (waiting for one when the copies sharing it use them all).
    private func copyWindows(
        from source: some BlockSource, to target: some BlockTarget, mode: CopyMode, requestSize: Int,
        pool: BufferPool, progress: CopyProgress
    ) async throws {
        try await withThrowingTaskGroup(of: Int.self) { group in
            var ledger = WindowLedger()
            // The last extent of the window before, to count an extent that crosses a boundary once.
            var previous: PlannedOperation?
            func settle(below limit: Int) async throws {
                for end in ledger.newlySettled(below: limit) { try await target.settled(below: end) }
            }
            // Waits for one request; false when none runs.
            func reap() async throws -> Bool {
                guard let window = try await group.next() else { return false }
                ledger.finished(in: window)
                return true
            }
            for window in windows(of: source.size) {
                let plan = ExtentPlan(
                    extents: try await source.extents(in: window), mode: mode, requestSize: requestSize,
                    granularity: target.granularity, previousEnd: target.previousEnd)
                progress.addExtents(plan.extentCount - (plan.continues(previous) ? 1 : 0))
                previous = plan.lastExtent
                if mode == .full {
                    progress.addZero(UInt64(window.count) - plan.copyBytes)
                } else if let previousEnd = target.previousEnd, previousEnd < window.upperBound {
                    // Past a shorter previous point, what is not copied stays a hole, as in a full copy.
                    let grown = max(previousEnd, window.lowerBound)..<window.upperBound
                    progress.addZero(grown.upperBound - grown.lowerBound - plan.copyBytes(in: grown))
                }
                let index = ledger.open(endingAt: window.upperBound)
                for operation in plan.operations {
                    try Task.checkCancellation()
                    if ledger.inFlight >= max(1, requestsInFlight), try await reap() {
                        try await settle(below: index)
                    }
                    let buffer =
                        operation.action == .copy ? try await pool.take(length: Int(operation.length)) : nil
                    let limiter = rateLimiter
                    group.addTask {
                        defer { if let buffer { pool.give(buffer) } }
                        try await Self.perform(
                            operation, into: buffer, source: source, target: target, progress: progress,
                            limiter: limiter)
                        return index
                    }
                    ledger.started(in: index)
                }
                // Windows before this one finish before the next is planned, so the target never holds
                // more than two windows' worth of state (a sparse disk may never fill the pipeline).
                while ledger.settledCount < index, try await reap() { try await settle(below: index) }
                try await settle(below: index + 1)
            }
            while try await reap() { try await settle(below: ledger.count) }
            try await settle(below: ledger.count)
        }
    }

    /// Runs one planned operation; a copy reads into `buffer`, which it holds, once `limiter` lets it.
    private static func perform(
        _ operation: PlannedOperation, into buffer: BufferPool.Buffer?, source: some BlockSource,
        target: some BlockTarget, progress: CopyProgress, limiter: ByteRateLimiter?
    ) async throws(CopyError) {
        switch operation.action {
        case .copy:
            guard let buffer else { preconditionFailure("a copy request runs without a buffer") }
            if let limiter {
                do { try await limiter.acquire(operation.length) } catch { throw CopyError.interrupted() }
            }
            try await source.read(into: buffer.bytes, at: operation.offset)
            progress.addRead(operation.length)
            try await target.write(UnsafeRawBufferPointer(buffer.bytes), at: operation.offset)
            progress.addWritten(operation.length)
        case .zero:
            try await target.writeZeros(at: operation.offset, length: operation.length)
            progress.addZero(operation.length)
        }
    }

    private func windows(of size: UInt64) -> some Sequence<Range<UInt64>> {
        stride(from: UInt64(0), to: size, by: Int(windowSize)).lazy.map { start in
            start..<min(size, start + windowSize)
        }
    }
}
