import Foundation
import Synchronization
import SystemPackage
import TestSupport
import Testing

@testable import FileIO

/// A target file's write path: one writer thread per file, and the page-cache window behind its writes.
@Suite("FileIO: writer thread and page-cache window")
struct WritePathTests {
    @Test("work handed to a writer thread from many tasks at once runs one at a time, on one thread")
    func writerThreadRunsOneAtATime() async throws {
        let tally = Tally()
        try await WriterThread.with { writer in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<64 {
                    group.addTask {
                        try await writer.run { () throws(LayerError) in
                            tally.enter()
                            usleep(200)
                            tally.leave()
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        #expect(tally.mostAtOnce.load(ordering: .sequentiallyConsistent) == 1)
        #expect(tally.threads.withLock { $0.count } == 1)
    }

    @Test("the writer thread returns the work's result and its error unchanged")
    func writerThreadResults() async throws {
        let value = try await WriterThread.with { writer throws(LayerError) in
            try await writer.run { () throws(LayerError) -> Int in 7 }
        }
        #expect(value == 7)
        await #expect(throws: LayerError.failed) {
            try await WriterThread.with { writer throws(LayerError) in
                try await writer.run { () throws(LayerError) -> Int in throw .failed }
            }
        }
    }

    @Test("writes through the window reach the file intact, and leave at most the window's bytes in the page cache")
    func windowDropsWrittenPages() async throws {
        let folder = try TemporaryDirectory("fileio")
        defer { folder.remove() }
        let path = folder.file("image")
        let file = try FileDescriptor.open(
            path: path, .readWrite, options: [.create, .exclusiveCreate], permissions: .ownerReadWrite)
        defer { file.closeAfterUse() }
        let window = WritebackWindow(limit: 1 << 20)
        let chunk = 256 << 10
        for index in 0..<128 {  // 32 MiB, in an order that is not the file's
            let offset = UInt64((index * 37) % 128 * chunk)
            try file.write(Array(repeating: UInt8(truncatingIfNeeded: offset >> 18), count: chunk), at: offset)
            window.wrote(at: offset, length: chunk, on: file)
        }
        let resident = try await ChildProcess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", path])
        let bytes = try #require(UInt64(resident.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(bytes <= 2 << 20, "\(bytes) bytes of the file are still cached")
        var buffer = [UInt8](repeating: 0, count: chunk)
        for index in 0..<128 {
            let offset = UInt64(index * chunk)
            let count = try buffer.withUnsafeMutableBytes { try file.read(into: $0, at: offset) }
            #expect(count == chunk && buffer.allSatisfy { $0 == UInt8(truncatingIfNeeded: offset >> 18) })
        }
    }
}

/// How many pieces of work ran at once at most, and on which threads.
final class Tally: Sendable {
    let running = Atomic<Int>(0)
    let mostAtOnce = Atomic<Int>(0)
    let threads = Mutex<Set<UInt>>([])

    func enter() {
        let now = running.add(1, ordering: .sequentiallyConsistent).newValue
        mostAtOnce.max(now, ordering: .sequentiallyConsistent)
        threads.withLock { _ = $0.insert(UInt(bitPattern: Int(bitPattern: pthread_self()))) }
    }

    func leave() {
        running.subtract(1, ordering: .sequentiallyConsistent)
    }
}
