import Foundation
import NBD
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite(.timeLimit(.minutes(2)))
struct NBDConnectionTests {
    @Test func readsAnOddSizedExportAsyncAndBlocking() async throws {
        // 5000 bytes: not a multiple of 4096. Bytes 1, 2, 3 at 0 and 0xff at 4097.
        try await NBDServer.withNBDKit(["data", "1 2 3 @4097 0xff", "size=5000"]) { server in
            let connection = try await NBDConnection.connect(uri: server.uri())
            #expect(connection.info.size == 5000)
            var expected = [UInt8](repeating: 0, count: 5000)
            expected[0...2] = [1, 2, 3]
            expected[4097] = 0xff

            let viaAsync = try await connection.read(count: 5000, at: 0)
            #expect(viaAsync == expected)

            var tail = [UInt8](repeating: 0xAA, count: 4)
            try tail.withUnsafeMutableBytes { try connection.readBlocking(into: $0, at: 4096) }
            #expect(tail == [0, 0xff, 0, 0])
            await connection.close()
        }
    }

    @Test func manyConcurrentReadsEachGetTheirOwnBytes() async throws {
        try await NBDServer.withNBDKit(["pattern", "size=16M"]) { server in
            // The pattern plugin stores each 8-byte offset, big-endian, at that offset.
            let connection = try await NBDConnection.connect(uri: server.uri())
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<64 {
                    group.addTask {
                        let offset = UInt64(index) * 256 * 1024
                        let bytes = try await connection.read(count: 65536, at: offset)
                        let first = bytes[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                        let last = bytes[65528..<65536].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                        #expect(first == offset)
                        #expect(last == offset + 65528)
                    }
                }
                try await group.waitForAll()
            }
            await connection.close()
        }
    }

    @Test func blockStatusCoversATebibyteExportExactly() async throws {
        // Far more than one 32-bit block status command can ask about.
        let tib: UInt64 = 1 << 40
        try await NBDServer.withNBDKit(["data", "@1099511627000 1 2 3", "size=1T"]) { server in
            let connection = try await NBDConnection.connect(
                uri: server.uri(), metaContexts: [MetaContext.baseAllocation])
            #expect(connection.info.metaContexts == [MetaContext.baseAllocation])
            let map = try await connection.blockStatus(in: 0..<tib)
            let extents = try #require(map[MetaContext.baseAllocation])
            #expect(extents.first?.offset == 0)
            #expect(extents.last?.end == tib)
            for (a, b) in zip(extents, extents.dropFirst()) { #expect(a.end == b.offset) }
            let data = extents.filter { $0.flags & AllocationFlags.zero == 0 }
            #expect(data.count == 1)
            let chunk = try #require(data.first)
            #expect(chunk.offset <= 1_099_511_627_000 && chunk.end >= 1_099_511_627_003)
            #expect(chunk.length <= 1 << 20)
            await connection.close()
        }
    }

    @Test func aBitmapTheServerLacksIsNotNegotiated() async throws {
        try await NBDServer.withNBDKit(["memory", "size=1M"]) { server in
            let connection = try await NBDConnection.connect(
                uri: server.uri(), metaContexts: [MetaContext.baseAllocation, MetaContext.dirtyBitmap("b0")])
            #expect(connection.info.metaContexts == [MetaContext.baseAllocation])
            await connection.close()
        }
    }

    @Test func aServerErrorCarriesItsErrno() async throws {
        try await NBDServer.withNBDKit(["--filter=error", "memory", "size=1M", "error=EIO", "error-pread-rate=100%"]) {
            server in
            let connection = try await NBDConnection.connect(uri: server.uri())
            let error = await #expect(throws: NBDError.self) {
                _ = try await connection.read(count: 4096, at: 0)
            }
            #expect(error?.code == .read)
            #expect(error?.errno == EIO)
            await connection.close()
        }
    }

    @Test func connectingToNothingFailsWithTheReason() async throws {
        let error = await #expect(throws: NBDError.self) {
            _ = try await NBDConnection.connect(uri: "nbd+unix:///?socket=/nonexistent/nbd.sock")
        }
        #expect(error?.code == .connect)
        #expect(error?.message.contains("No such file or directory") == true)
    }

    @Test func readsInFlightFailWhenTheServerGoesAway() async throws {
        // Every read waits 30 s in the server; the server is killed while they wait. The delay is long so that a
        // loaded machine, which can stall this task for seconds before the kill, cannot let the reads finish first;
        // the kill ends them at once, so the test takes no longer for it.
        try await NBDServer.withNBDKit(["--filter=delay", "memory", "size=16M", "rdelay=30"]) { server in
            let connection = try await NBDConnection.connect(uri: server.uri())
            let failures = try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<8 {
                    group.addTask {
                        do {
                            _ = try await connection.read(count: 4096, at: UInt64(index) * 4096)
                            return false
                        } catch {
                            return true
                        }
                    }
                }
                try await Task.sleep(for: .milliseconds(300))
                server.kill()
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(failures == 8)
            let after = await #expect(throws: NBDError.self) {
                _ = try await connection.read(count: 16, at: 0)
            }
            #expect(after?.code == .disconnected)
            await connection.close()
        }
    }
}
