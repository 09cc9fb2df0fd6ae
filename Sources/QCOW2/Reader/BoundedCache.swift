import Synchronization

/// A least-recently-used cache shared by concurrent readers, bounded by the bytes its values take.
///
/// Bounded by bytes rather than entries so that the caches of a chain of a thousand images can share one budget:
/// a reader holds a few megabytes of metadata however much of the disk it walks and however deep the chain is.
/// Values are loaded outside the lock: two threads missing the same key both load it, which costs a read but never
/// blocks one reader on another's I/O.
final class BoundedCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private struct Entry {
        var value: Value
        var cost: Int
        var lastUse: UInt64
    }

    private struct State {
        var entries: [Key: Entry] = [:]
        var clock: UInt64 = 0
        var cost = 0
        var budget: Int
    }

    private let state: Mutex<State>

    /// A cache of at most `budget` bytes of values; the newest value is kept even if alone it takes more.
    init(budget: Int) {
        precondition(budget > 0, "a cache needs room for one entry")
        state = Mutex(State(budget: budget))
    }

    /// The bytes the cache may hold.
    var budget: Int {
        get { state.withLock { $0.budget } }
        set { state.withLock { $0.budget = max(1, newValue) } }
    }

    /// The cached value for `key`, or the value `load` produces with the bytes it takes, which is then cached.
    func value(for key: Key, load: () throws(QCOW2Error) -> (value: Value, cost: Int)) throws(QCOW2Error) -> Value {
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
            if let replaced = state.entries.removeValue(forKey: key) { state.cost -= replaced.cost }
            while !state.entries.isEmpty, state.cost + loaded.cost > state.budget {
                // A linear scan: an eviction follows a disk read anyway, and a chain's cache holds at most about a
                // thousand tables.
                guard let oldest = state.entries.min(by: { $0.value.lastUse < $1.value.lastUse }) else { break }
                state.entries[oldest.key] = nil
                state.cost -= oldest.value.cost
            }
            state.entries[key] = Entry(value: loaded.value, cost: loaded.cost, lastUse: state.clock)
            state.cost += loaded.cost
        }
        return loaded.value
    }

    /// How many values are cached now; for tests of the bound.
    var count: Int { state.withLock { $0.entries.count } }

    /// The bytes the cached values take now; for tests of the bound.
    var cost: Int { state.withLock { $0.cost } }
}
