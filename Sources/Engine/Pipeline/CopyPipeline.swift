/// Moves data from a block source to a block target: maps the source a window at a time, plans each
/// window, and runs the plan's requests concurrently with a bounded number in flight.
///
/// Memory is bounded whatever the source's size: `requestsInFlight × requestSize` bytes of buffers, plus
/// the extents of one window.
public struct CopyPipeline: Sendable {
    /// Bytes per read request.
    public var requestSize: Int
    /// Requests in flight at most, over all connections.
    public var requestsInFlight: Int
    /// How much of the source is mapped (block status) and planned at a time.
    public var windowSize: UInt64
    /// Whether to map the whole source before copying, so that progress knows the total.
    public var measureTotal: Bool

    public init(requestSize: Int, requestsInFlight: Int, windowSize: UInt64 = 1 << 30, measureTotal: Bool = false) {
        self.requestSize = requestSize
        self.requestsInFlight = requestsInFlight
        self.windowSize = windowSize
        self.measureTotal = measureTotal
    }

    /// Copies `source` to `target` in `mode`, counting into `progress`.
    public func run(
        from source: some BlockSource, to target: some BlockTarget, mode: CopyMode, progress: CopyProgress
    ) async throws(CopyError) {
        // Whole units of the target per request, and no more than the source accepts.
        let unit = target.granularity
        let requestSize = max(unit, min(requestSize, source.maximumReadSize) / unit * unit)
        let pool = BufferPool(count: max(1, requestsInFlight), bufferSize: requestSize)
        do {
            if measureTotal {
                var total: UInt64 = 0
                for window in windows(of: source.size) {
                    let extents = try await source.extents(in: window)
                    total +=
                        ExtentPlan(extents: extents, mode: mode, requestSize: requestSize, granularity: unit)
                        .copyBytes
                }
                progress.setTotal(total)
            }
            try await withThrowingTaskGroup(of: Int.self) { group in
                // Requests still running per window, so the target learns when a window is complete.
                var running: [Int] = []
                var inFlight = 0
                var settledWindows = 0
                var windowEnds: [UInt64] = []
                // The last extent of the window before, to count an extent that crosses a boundary once.
                var previous: PlannedOperation?
                func settle(through planned: Int) async throws {
                    while settledWindows < planned && running[settledWindows] == 0 {
                        try await target.settled(below: windowEnds[settledWindows])
                        settledWindows += 1
                    }
                }
                for (index, window) in windows(of: source.size).enumerated() {
                    let plan = ExtentPlan(
                        extents: try await source.extents(in: window), mode: mode, requestSize: requestSize,
                        granularity: target.granularity)
                    progress.addExtents(plan.extentCount - (plan.continues(previous) ? 1 : 0))
                    previous = plan.lastExtent
                    if mode == .full { progress.addZero(UInt64(window.count) - plan.copyBytes) }
                    running.append(0)
                    windowEnds.append(window.upperBound)
                    for operation in plan.operations {
                        try Task.checkCancellation()
                        if inFlight == pool.count, let done = try await group.next() {
                            running[done] -= 1
                            inFlight -= 1
                            try await settle(through: index)
                        }
                        group.addTask {
                            try await Self.perform(
                                operation, source: source, target: target, pool: pool, progress: progress)
                            return index
                        }
                        running[index] += 1
                        inFlight += 1
                    }
                    // Windows before this one finish before the next is planned, so the target never holds
                    // more than two windows' worth of state (a sparse disk may never fill the pipeline).
                    while settledWindows < index, let done = try await group.next() {
                        running[done] -= 1
                        inFlight -= 1
                        try await settle(through: index)
                    }
                    try await settle(through: index + 1)
                }
                while let done = try await group.next() {
                    running[done] -= 1
                    try await settle(through: running.count)
                }
                try await settle(through: running.count)
            }
        } catch {
            // Once cancelled, whatever failed first (a dropped connection, a refused write) is a consequence.
            if Task.isCancelled || error is CancellationError { throw CopyError(.interrupted, "interrupted") }
            if let error = error as? CopyError { throw error }
            throw CopyError(.source, "copy failed: \(error)")
        }
    }

    private static func perform(
        _ operation: PlannedOperation, source: some BlockSource, target: some BlockTarget, pool: BufferPool,
        progress: CopyProgress
    ) async throws(CopyError) {
        switch operation.action {
        case .copy:
            let (slot, buffer) = pool.take(length: Int(operation.length))
            defer { pool.give(slot) }
            try await source.read(into: buffer, at: operation.offset)
            progress.addRead(operation.length)
            try await target.write(UnsafeRawBufferPointer(buffer), at: operation.offset)
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
