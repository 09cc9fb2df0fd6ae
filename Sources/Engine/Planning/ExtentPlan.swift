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

    /// Plans `extents` for `mode`, cutting copies at multiples of `requestSize` so that requests stay
    /// aligned to it wherever the extents allow.
    public init(extents: [SourceExtent], mode: CopyMode, requestSize: Int) {
        precondition(requestSize > 0, "request size must be positive")
        var pending: PlannedOperation?
        for extent in extents where extent.length > 0 {
            guard let action = Self.action(for: extent, mode: mode) else { continue }
            // Neighbouring extents with the same action (e.g. data whose dirty flag differs in full mode)
            // become one, so requests are not cut needlessly.
            if var current = pending, current.action == action, current.offset + current.length == extent.offset {
                current.length += extent.length
                pending = current
            } else {
                if let current = pending { append(current, requestSize: UInt64(requestSize)) }
                pending = PlannedOperation(offset: extent.offset, length: extent.length, action: action)
            }
        }
        if let current = pending { append(current, requestSize: UInt64(requestSize)) }
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
        extentCount += 1
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

    /// Bytes the plan zeros.
    public var zeroBytes: UInt64 {
        operations.lazy.filter { $0.action == .zero }.reduce(0) { $0 + $1.length }
    }
}
