/// What a copy does with each range of the source.
public enum CopyMode: String, Sendable, Codable {
    /// Every range into a new, empty target: data is copied, zeros stay holes.
    case full
    /// Only dirty ranges, into a target holding the previous point: dirty data is copied and dirty zeros
    /// are written as zeros, because the target holds older data there.
    case incremental
}

/// One step of a copy.
public struct PlannedOperation: Sendable, Equatable {
    public enum Action: Sendable, Equatable {
        /// Read the range from the source and write it to the target.
        case copy
        /// Make the range read as zeros in the target, without reading it.
        case zero
    }

    public var offset: UInt64
    public var length: UInt64
    public var action: Action

    public init(offset: UInt64, length: UInt64, action: Action) {
        self.offset = offset
        self.length = length
        self.action = action
    }
}

/// Turns extents into operations: which ranges to copy, which to zero, which to skip, and how to cut
/// copies into requests.
public struct ExtentPlan: Sendable, Equatable {
    /// The operations, in offset order, each copy at most the request size.
    public private(set) var operations: [PlannedOperation] = []
    /// How many extents (before cutting) the plan copies or zeros.
    public private(set) var extentCount = 0
    /// The first and the last extent the plan copies or zeros (before cutting), so that an extent cut by a
    /// window boundary can be counted once.
    public private(set) var firstExtent: PlannedOperation?
    public private(set) var lastExtent: PlannedOperation?

    /// Plans `extents` for `mode`, cutting copies at multiples of `requestSize` so that requests stay
    /// aligned to it wherever the extents allow.
    ///
    /// With a `granularity` above 1 (a qcow2 target's cluster size), every operation covers whole units of
    /// it: copies widen outward to unit boundaries (the source holds the whole point in time, so the rest
    /// of a unit is read from it), and zero ranges keep only their whole units, their partial ends becoming
    /// copies. Units are counted from 0 and clamped to the end of the extents, where the disk may end
    /// mid-unit. `requestSize` must be a multiple of `granularity`.
    ///
    /// An incremental plan with a `previousEnd` (the end of a previous point shorter than the source: a disk grown
    /// since) plans what lies past it as a full copy does, whatever its dirty flag: the target reads as zeros there,
    /// and QEMU's bitmap does not mark a region a resize added.
    public init(
        extents: [SourceExtent], mode: CopyMode, requestSize: Int, granularity: Int = 1, previousEnd: UInt64? = nil
    ) {
        precondition(
            requestSize > 0 && granularity > 0 && requestSize % granularity == 0, "bad request size or granularity")
        var merged: [PlannedOperation] = []
        for extent in Self.split(extents, at: mode == .incremental ? previousEnd : nil) where extent.length > 0 {
            let beyondPrevious = previousEnd.map { extent.offset >= $0 } ?? false
            guard let action = Self.action(for: extent, mode: beyondPrevious ? .full : mode) else { continue }
            // Neighbouring extents with the same action (e.g. data whose dirty flag differs in full mode)
            // become one, so requests are not cut needlessly.
            if let last = merged.last, last.action == action, last.offset + last.length == extent.offset {
                merged[merged.count - 1].length += extent.length
            } else {
                merged.append(PlannedOperation(offset: extent.offset, length: extent.length, action: action))
            }
        }
        if granularity > 1, let end = extents.last?.end {
            merged = Self.aligned(merged, to: UInt64(granularity), end: end)
        }
        extentCount = merged.count
        firstExtent = merged.first
        lastExtent = merged.last
        for operation in merged { append(operation, requestSize: UInt64(requestSize)) }
    }

    /// Whether the plan's first extent goes on from `extent` (the same action, starting where it ends).
    public func continues(_ extent: PlannedOperation?) -> Bool {
        guard let extent, let first = firstExtent else { return false }
        return extent.action == first.action && extent.offset + extent.length == first.offset
    }

    /// Widens copies and narrows zeros to whole units; `operations` are sorted and disjoint.
    static func aligned(_ operations: [PlannedOperation], to unit: UInt64, end: UInt64) -> [PlannedOperation] {
        func down(_ value: UInt64) -> UInt64 { value / unit * unit }
        func up(_ value: UInt64) -> UInt64 { value == end ? end : min(end, (value + unit - 1) / unit * unit) }
        var pieces: [PlannedOperation] = []
        func add(_ start: UInt64, _ stop: UInt64, _ action: PlannedOperation.Action) {
            guard stop > start else { return }
            pieces.append(PlannedOperation(offset: start, length: stop - start, action: action))
        }
        for operation in operations {
            let start = operation.offset
            let stop = operation.offset + operation.length
            switch operation.action {
            case .copy:
                add(down(start), up(stop), .copy)
            case .zero:
                let innerStart = up(start)
                let innerStop = stop == end ? end : down(stop)
                if innerStart < innerStop {
                    add(down(start), innerStart, .copy)
                    add(innerStart, innerStop, .zero)
                    add(innerStop, up(stop), .copy)
                } else {
                    add(down(start), up(stop), .copy)  // no whole unit inside: copy what is there
                }
            }
        }
        // Widened copies may now overlap or touch each other; zeros never overlap copies, because a
        // zero keeps only units it covers entirely, and a copy only widens into units it touches.
        var result: [PlannedOperation] = []
        for piece in pieces {
            if let last = result.last, last.action == .copy, piece.action == .copy,
                piece.offset <= last.offset + last.length
            {
                let stop = max(last.offset + last.length, piece.offset + piece.length)
                result[result.count - 1].length = stop - last.offset
            } else if let last = result.last, last.action == .zero, piece.action == .zero,
                piece.offset == last.offset + last.length
            {
                result[result.count - 1].length += piece.length
            } else {
                result.append(piece)
            }
        }
        return result
    }

    /// `extents` with the one that crosses `offset` cut in two there.
    static func split(_ extents: [SourceExtent], at offset: UInt64?) -> [SourceExtent] {
        guard let offset, let index = extents.firstIndex(where: { $0.offset < offset && offset < $0.end }) else {
            return extents
        }
        var result = extents
        let extent = extents[index]
        result[index].length = offset - extent.offset
        result.insert(
            SourceExtent(offset: offset, length: extent.end - offset, content: extent.content, isDirty: extent.isDirty),
            at: index + 1)
        return result
    }

    static func action(for extent: SourceExtent, mode: CopyMode) -> PlannedOperation.Action? {
        switch (mode, extent.content, extent.isDirty) {
        case (.full, .data, _): .copy
        case (.full, .zero, _): nil  // a new target is all holes already
        case (.incremental, _, false): nil
        case (.incremental, .data, true): .copy
        case (.incremental, .zero, true): .zero
        }
    }

    private mutating func append(_ operation: PlannedOperation, requestSize: UInt64) {
        guard operation.action == .copy else {
            operations.append(operation)
            return
        }
        var offset = operation.offset
        let end = operation.offset + operation.length
        while offset < end {
            let boundary = (offset / requestSize + 1) * requestSize
            let next = min(boundary, end)
            operations.append(PlannedOperation(offset: offset, length: next - offset, action: .copy))
            offset = next
        }
    }

    /// Bytes the plan reads and writes.
    public var copyBytes: UInt64 {
        operations.lazy.filter { $0.action == .copy }.reduce(0) { $0 + $1.length }
    }

    /// Bytes the plan reads and writes within `range`.
    public func copyBytes(in range: Range<UInt64>) -> UInt64 {
        operations.lazy.filter { $0.action == .copy }.reduce(0) {
            let start = max($1.offset, range.lowerBound)
            let end = min($1.offset + $1.length, range.upperBound)
            return $0 + (end > start ? end - start : 0)
        }
    }

    /// Bytes the plan zeros.
    public var zeroBytes: UInt64 {
        operations.lazy.filter { $0.action == .zero }.reduce(0) { $0 + $1.length }
    }
}
