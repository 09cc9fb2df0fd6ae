import Foundation
import TestSupport
import Testing

@testable import Engine

/// Copies that share one ``BufferPool`` (the disks of one backup or restore): they wait for each other's buffers,
/// never hold more than the pool, and each still writes exactly its own source. Images are made and judged by
/// qemu-img.
@Suite(.timeLimit(.minutes(2)))
struct SharedBufferTests {
    /// A qcow2 image of 24 MiB whose data differs from image to image (`pattern`), in several extents.
    func makeImage(_ path: String, pattern: Int) async throws {
        try await runTool(["qemu-img", "create", "-q", "-f", "qcow2", path, "24M"])
        try await runTool([
            "qemu-io", "-f", "qcow2", "-c", "write -P \(pattern) 0 9M", "-c", "write -P \(pattern + 1) 12M 5M",
            "-c", "write -P \(pattern + 2) 20M 3M", path,
        ])
    }

    @Test("three copies at once through a pool of two 1 MiB buffers: each target is exactly its source")
    func copiesShareAPool() async throws {
        let directory = try TemporaryDirectory("pbshared")
        defer { directory.remove() }
        let pool = BufferPool(count: 2, bufferSize: 1 << 20)
        let pipeline = CopyPipeline(requestSize: 1 << 20, requestsInFlight: 8, buffers: pool)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<3 {
                let source = directory.file("source\(index).qcow2")
                try await makeImage(source, pattern: 0x10 * (index + 1))
                let target = directory.file("copy\(index)." + (index == 1 ? "qcow2" : "raw"))
                group.addTask {
                    let chain = try await QCOW2ChainSource.open(path: source)
                    if index == 1 {
                        try await QCOW2FileTarget.withNewImage(
                            at: target, size: chain.size, backing: nil, replacing: false
                        ) { file throws(CopyError) in
                            try await pipeline.run(from: chain, to: file, mode: .full, progress: CopyProgress())
                        }
                    } else {
                        try await RawFileTarget.withNewFile(at: target, size: chain.size, replacing: false) {
                            file throws(CopyError) in
                            try await pipeline.run(from: chain, to: file, mode: .full, progress: CopyProgress())
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        for index in 0..<3 {
            let format = index == 1 ? "qcow2" : "raw"
            let compare = try await runTool([
                "qemu-img", "compare", "-f", format, directory.file("copy\(index).\(format)"), "-F", "qcow2",
                directory.file("source\(index).qcow2"),
            ])
            #expect(compare.contains("Images are identical"), "copy \(index): \(compare)")
        }
        // Every buffer came back: both can be taken again at once without waiting.
        let first = try await pool.take(length: 1 << 20)
        let second = try await pool.take(length: 1 << 20)
        #expect(first.slot != second.slot)
    }

    @Test("a buffer given back goes to a copy waiting for one, and a cancelled wait ends at once")
    func waitingForABuffer() async throws {
        let pool = BufferPool(count: 1, bufferSize: 4096)
        let held = try await pool.take(length: 4096)
        let cancelled = Task { try await pool.take(length: 4096) }
        let waiting = Task { try await pool.take(length: 4096) }
        try await Task.sleep(for: .milliseconds(100))
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        pool.give(held)
        let next = try await waiting.value
        #expect(next.slot == held.slot, "the buffer given back went to the waiting copy")
        pool.give(next)
    }

    @Test("buffers smaller than the target's clusters are refused before anything is copied")
    func buffersTooSmallForTheTarget() async throws {
        let directory = try TemporaryDirectory("pbshared")
        defer { directory.remove() }
        let source = directory.file("source.qcow2")
        try await makeImage(source, pattern: 0x40)
        let pipeline = CopyPipeline(
            requestSize: 1 << 20, requestsInFlight: 4, buffers: BufferPool(count: 4, bufferSize: 4096))
        let chain = try await QCOW2ChainSource.open(path: source)
        let target = directory.file("copy.qcow2")
        await #expect(throws: CopyError.self) {
            try await QCOW2FileTarget.withNewImage(at: target, size: chain.size, backing: nil, replacing: false) {
                file throws(CopyError) in
                try await pipeline.run(from: chain, to: file, mode: .full, progress: CopyProgress())
            }
        }
        #expect(!FileManager.default.fileExists(atPath: target), "nothing is left at the target")
    }
}
