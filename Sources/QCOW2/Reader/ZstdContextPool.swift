internal import CZstd
import Synchronization

/// zstd decompression contexts kept for reuse. Creating one took 15-30 µs on the test machine, as long as decoding an
/// incompressible 64 KiB cluster with a reused one; a few idle ones are kept, one per reader working at the same time.
final class ZstdContextPool: Sendable {
    static let shared = ZstdContextPool()
    /// Contexts kept idle: each holds 96 KiB, and up to a cluster more after a frame too large to decode in one pass.
    static let maximumIdle = 8

    private let idle = Mutex<[ZstdContext]>([])

    /// An idle context, or a new one; nil only if zstd could not allocate one.
    func take() -> ZstdContext? {
        idle.withLock { $0.popLast() } ?? ZstdContext()
    }

    /// Returns a context `take` gave, to be reused; beyond ``maximumIdle`` it is freed.
    func giveBack(_ context: ZstdContext) {
        idle.withLock { contexts in
            if contexts.count < Self.maximumIdle { contexts.append(context) }
        }
    }
}

/// One zstd decompression context, freed with the object.
final class ZstdContext: @unchecked Sendable {  // The pool hands each context to one thread at a time.
    let pointer: OpaquePointer

    init?() {
        guard let pointer = ZSTD_createDCtx() else { return nil }
        self.pointer = pointer
    }

    deinit { ZSTD_freeDCtx(pointer) }
}
