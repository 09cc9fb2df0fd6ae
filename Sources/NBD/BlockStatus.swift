/// One (length, flags) pair of a block status reply, as the server sent it.
public struct BlockStatusEntry: Sendable, Equatable {
    public var length: UInt32
    public var flags: UInt32

    public init(length: UInt32, flags: UInt32) {
        self.length = length
        self.flags = flags
    }
}

/// A range of the export and the flags one meta context gives it.
public struct BlockStatusExtent: Sendable, Equatable {
    public var offset: UInt64
    public var length: UInt64
    public var flags: UInt32

    public init(offset: UInt64, length: UInt64, flags: UInt32) {
        self.offset = offset
        self.length = length
        self.flags = flags
    }

    public var end: UInt64 { offset + length }
}

/// Flags of the `base:allocation` meta context.
public enum AllocationFlags {
    /// `NBD_STATE_HOLE`: the range is not allocated on the server.
    public static let hole: UInt32 = 1
    /// `NBD_STATE_ZERO`: the range reads as zeros.
    public static let zero: UInt32 = 2
}

/// Flags of a `qemu:dirty-bitmap:NAME` meta context.
public enum DirtyBitmapFlags {
    /// `NBD_STATE_DIRTY`: the range changed since the bitmap was cleared.
    public static let dirty: UInt32 = 1
}

/// The names of meta contexts Pullback uses.
public enum MetaContext {
    /// Which ranges hold data, and which are holes or read as zeros.
    public static let baseAllocation = "base:allocation"

    /// The context through which qemu exports the persistent dirty bitmap `name`.
    public static func dirtyBitmap(_ name: String) -> String { "qemu:dirty-bitmap:\(name)" }
}

/// What one block status command returned: per meta context, the pairs it sent from `offset` on.
struct BlockStatusReply: Sendable {
    var offset: UInt64 = 0
    var contexts: [String: [BlockStatusEntry]] = [:]

    mutating func append(context: String, startingAt offset: UInt64, _ entries: [BlockStatusEntry]) {
        contexts[context, default: []].append(contentsOf: entries)
    }
}

// MARK: - Stitching replies into a map

/// Builds, for each meta context, extents that cover a range exactly, from replies that may each cover
/// less than was asked (servers may answer short) or more (they may run past the end asked for).
struct BlockStatusMap {
    private(set) var extents: [String: [BlockStatusExtent]]
    private(set) var covered: UInt64
    let end: UInt64

    init(contexts: some Sequence<String>, range: Range<UInt64>) {
        extents = Dictionary(uniqueKeysWithValues: contexts.map { ($0, []) })
        covered = range.lowerBound
        end = range.upperBound
    }

    var isComplete: Bool { covered >= end }

    /// Takes one reply that starts at `covered`. Every context must describe at least one byte; the map
    /// advances to the shortest reach among the contexts, clamped at the end of the range, and the part
    /// of longer replies beyond that point is asked for again by the next command.
    mutating func add(_ reply: BlockStatusReply) throws(NBDError) {
        var reach = end
        for name in extents.keys {
            let total = reply.contexts[name, default: []].reduce(UInt64(0)) { $0 + UInt64($1.length) }
            guard total > 0 else {
                throw NBDError(.protocolViolation, "the server sent no \(name) extents at offset \(covered)")
            }
            reach = min(reach, covered + total)
        }
        for name in Array(extents.keys) {
            var offset = covered
            for entry in reply.contexts[name, default: []] where offset < reach {
                let length = min(UInt64(entry.length), reach - offset)
                if length > 0 {
                    appendMerged(name, BlockStatusExtent(offset: offset, length: length, flags: entry.flags))
                }
                offset += length
            }
        }
        covered = reach
    }

    private mutating func appendMerged(_ name: String, _ extent: BlockStatusExtent) {
        if let last = extents[name]?.last, last.flags == extent.flags, last.end == extent.offset {
            extents[name]![extents[name]!.count - 1].length += extent.length
        } else {
            extents[name, default: []].append(extent)
        }
    }
}
