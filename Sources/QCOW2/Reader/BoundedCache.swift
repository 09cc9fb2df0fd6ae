import Synchronization

/// A small least-recently-used cache shared by concurrent readers.
///
/// Bounded by entry count so that a reader of a 1 TiB image holds a few megabytes of metadata however much
/// of it is walked. Values are loaded outside the lock: two threads missing the same key both load it,
/// which costs a read but never blocks one reader on another's I/O.
final class BoundedCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private struct Entry {
        var value: Value
        var lastUse: UInt64
    }

    private struct State {
        var entries: [Key: Entry] = [:]
        var clock: UInt64 = 0
    }

    let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) {
        precondition(capacity > 0, "a cache needs room for one entry")
        self.capacity = capacity
    }

    /// The cached value for `key`, or the value `load` produces, which is then cached.
    func value(for key: Key, load: () throws(QCOW2Error) -> Value) throws(QCOW2Error) -> Value {
        let cached = state.withLock { state -> Value? in
            state.clock += 1
            guard var entry = state.entries[key] else { return nil }
            entry.lastUse = state.clock
            state.entries[key] = entry
            return entry.value
        }
        if let cached { return cached }
        let loaded = try load()
        state.withLock { state in
            state.clock += 1
            if state.entries[key] == nil, state.entries.count >= capacity {
                // A linear scan: capacities are tens of entries, and an eviction follows a disk read anyway.
                if let oldest = state.entries.min(by: { $0.value.lastUse < $1.value.lastUse })?.key {
                    state.entries[oldest] = nil
                }
            }
            state.entries[key] = Entry(value: loaded, lastUse: state.clock)
        }
        return loaded
    }

    /// How many values are cached now; for tests of the bound.
    var count: Int { state.withLock { $0.entries.count } }
}
