import Foundation
import Synchronization
import TestSupport
import Testing

@testable import QCOW2

extension QCOW2ReaderTests {
    /// Reads from several threads at once, as the owner's thread pool does, over more L2 tables than the
    /// cache holds so that loads and evictions race.
    @Suite(.timeLimit(.minutes(3)))
    struct Concurrency {
        @Test("concurrent reads agree with qemu while the L2 cache evicts")
        func concurrentReads() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let base = directory.file("base.qcow2")
            let top = directory.file("top.qcow2")
            // 4 KiB clusters: one L2 table covers 2 MiB, so 256 MiB needs 128 tables, twice the cache.
            let size: UInt64 = 256 << 20
            try await Qemu.create(base, size: size, options: ["-o", "cluster_size=4096"])
            try await Qemu.io(
                base, stride(from: 0, to: Int(size), by: 1 << 20).map { "write -P \($0 >> 20 & 0xff) \($0) 12288" })
            try await Qemu.createOverlay(top, backing: "base.qcow2", backingFormat: "qcow2")
            try await Qemu.io(
                top, stride(from: 0, to: Int(size), by: 3 << 20).map { "write -P 0xfe \($0 + 4000) 9000" })
            let expected = try await Qemu.rawContents(of: top)
            let chain = try QCOW2Chain.open(path: top)
            // Room for 64 of the 128 tables, as the per-image cache had: the chain's budget is far larger.
            let budget = 64 * (4096 + 512 * 4)
            if case .qcow2(let image) = chain.images[1] { image.caches.l2Tables.budget = budget }

            let failures = Failures()
            DispatchQueue.concurrentPerform(iterations: 8) { worker in
                var generator = SeededRandom(seed: UInt64(worker) + 100)
                for _ in 0..<300 {
                    let offset = Int(generator.next() % size)
                    let count = Int(generator.next() % UInt64(min(40_000, Int(size) - offset)))
                    do {
                        let bytes = try chain.read(count: count, at: UInt64(offset))
                        if bytes[...] != expected[offset..<offset + count] {
                            failures.add("read of \(count) at \(offset) differs")
                        }
                    } catch {
                        failures.add("read of \(count) at \(offset) threw \(error)")
                    }
                }
            }
            #expect(failures.messages.isEmpty, "\(failures.messages.prefix(5))")
            if case .qcow2(let image) = chain.images[1] {
                #expect(image.caches.l2Tables.cost <= budget)
            }
        }
    }
}

/// Failures collected from worker threads.
private final class Failures: Sendable {
    private let collected = Mutex<[String]>([])
    func add(_ message: String) { collected.withLock { $0.append(message) } }
    var messages: [String] { collected.withLock { $0 } }
}
