/// A stretch of guest bytes that one layer maps the same way: the unit the chain reads and maps by.
struct LayerRun: Sendable, Equatable {
    /// Guest offset of the first byte.
    var offset: UInt64
    var length: UInt64
    /// For `.data`, the host offset of the run's first byte (not necessarily cluster-aligned once a run
    /// starts inside a cluster). A `.compressed` run lies within one cluster.
    var mapping: ClusterMapping

    var end: UInt64 { offset + length }
}

/// Joins consecutive runs that can be served as one: unallocated or zero stretches, and data clusters that
/// are also contiguous on the host, so that a large read becomes a few large preads.
struct LayerRunMerger {
    private var pending: LayerRun?

    mutating func add(_ run: LayerRun, _ body: (LayerRun) throws(QCOW2Error) -> Void) throws(QCOW2Error) {
        guard run.length > 0 else { return }
        if var current = pending, current.end == run.offset, Self.continues(current, with: run) {
            current.length += run.length
            pending = current
            return
        }
        if let current = pending { try body(current) }
        pending = run
    }

    mutating func finish(_ body: (LayerRun) throws(QCOW2Error) -> Void) throws(QCOW2Error) {
        if let current = pending { try body(current) }
        pending = nil
    }

    private static func continues(_ current: LayerRun, with next: LayerRun) -> Bool {
        switch (current.mapping, next.mapping) {
        case (.unallocated, .unallocated), (.zero, .zero): true
        case (.data(let host), .data(let nextHost)): host + current.length == nextHost
        default: false
        }
    }
}
