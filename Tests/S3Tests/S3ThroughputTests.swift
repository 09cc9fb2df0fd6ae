import Foundation
import NIOCore
import S3
import Synchronization
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Upload and download speed of 16 MiB parts to SeaweedFS on loopback, with the CPU seconds of this process and of
/// the server. A measurement, not a check: runs only with PULLBACK_S3_BENCH=1 and prints its numbers.
@Suite(.objectStore, .serialized, .enabled(if: ProcessInfo.processInfo.environment["PULLBACK_S3_BENCH"] == "1"))
struct S3ThroughputTests {
    static let partSize = 16 << 20

    @Test(arguments: [1, 4])
    func sixteenMiBParts(concurrency: Int) async throws {
        let server = try ObjectStoreScope.current()
        let store = try await TestStore.make(server)
        let partCount = 16
        let part = testBytes(Self.partSize, seed: 99)
        let body = ByteBuffer(bytes: part)
        // The bucket's first write makes its volumes: not part of what is measured.
        try await blocking { _ = try store.client.putObject(bucket: store.bucket, key: "warm-up", body: body) }
        let upload = try await measure(server, bytes: partCount * Self.partSize) {
            try await blocking { () throws -> Void in
                let id = try store.client.createMultipartUpload(bucket: store.bucket, key: "bench")
                let tags = try Self.inParallel(partCount, concurrency) { index in
                    try store.client.uploadPart(
                        bucket: store.bucket, key: "bench", uploadID: id, partNumber: index + 1, body: body)
                }
                try store.client.completeMultipartUpload(
                    bucket: store.bucket, key: "bench", uploadID: id,
                    parts: tags.enumerated().map { S3CompletedPart(partNumber: $0.offset + 1, etag: $0.element) })
            }
        }
        let download = try await measure(server, bytes: partCount * Self.partSize) {
            try await blocking { () throws -> Void in
                let parts = try Self.inParallel(partCount, concurrency) { index in
                    let start = UInt64(index * Self.partSize)
                    let buffer = try store.client.getObject(
                        bucket: store.bucket, key: "bench", range: start..<start + UInt64(Self.partSize))
                    return buffer.readableBytes
                }
                precondition(parts.allSatisfy { $0 == Self.partSize })
            }
        }
        print("S3 BENCH concurrency \(concurrency): upload \(upload); download \(download)")
        try await store.close()
    }

    /// `count` calls of `body`, at most `concurrency` at once, results in index order.
    static func inParallel<T: Sendable>(_ count: Int, _ concurrency: Int, _ body: @Sendable (Int) throws -> T) throws
        -> [T]
    {
        let results = Mutex<[Int: Result<T, any Error>]>([:])
        let next = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: concurrency) { _ in
            while true {
                let index = next.withLock { value in
                    defer { value += 1 }
                    return value
                }
                guard index < count else { return }
                let result = Result { try body(index) }
                results.withLock { $0[index] = result }
            }
        }
        return try results.withLock { all in try (0..<count).map { try all[$0]!.get() } }
    }

    private func measure(_ server: ObjectStoreServer, bytes: Int, _ body: () async throws -> Void) async throws
        -> String
    {
        let clock = ContinuousClock()
        let (ownBefore, serverBefore) = (Self.ownCPUSeconds(), Self.cpuSeconds(of: server.pid))
        let elapsed = try await clock.measure { try await body() }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let own = Self.ownCPUSeconds() - ownBefore
        let serverCPU = Self.cpuSeconds(of: server.pid) - serverBefore
        return String(
            format: "%.0f MB/s (%.2f s wall, client CPU %.2f s, server CPU %.2f s)",
            Double(bytes) / seconds / 1e6, seconds, own, serverCPU)
    }

    private static func ownCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
            + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    /// utime + stime from /proc/PID/stat (fields 14 and 15, after the parenthesised name).
    private static func cpuSeconds(of pid: pid_t?) -> Double {
        guard let pid, let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
