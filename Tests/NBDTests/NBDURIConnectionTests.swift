import Foundation
import NBD
import TestSupport
import Testing

@Suite("A built NBD URI reaches the export it names", .timeLimit(.minutes(1)))
struct NBDURIConnectionTests {
    @Test("qemu-nbd on a socket whose path holds a space, with an export name holding '?', reads its bytes")
    func connectsThroughEscapedParts() async throws {
        let directory = try TemporaryDirectory("nbduri")
        defer { directory.remove() }
        let folder = directory.file("a b")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        let image = directory.file("disk.raw")
        var bytes = [UInt8](repeating: 0, count: 65536)
        for index in bytes.indices { bytes[index] = UInt8(truncatingIfNeeded: index &* 7 &+ 3) }
        try ImageBytes.write(bytes, to: image)
        let socket = folder + "/nbd?.sock"
        let pidFile = directory.file("qemu-nbd.pid")
        let exportName = "disk?one&two"
        let server = ChildProcess(
            [
                "qemu-nbd", "--read-only", "--persistent", "--format=raw", "--socket=\(socket)",
                "--export-name=\(exportName)", "--pid-file=\(pidFile)", image,
            ], logBase: directory.file("qemu-nbd"))
        try server.start()
        do {
            // qemu-nbd writes its pid file once the socket listens.
            let listening = try await waitUntil(timeout: .seconds(10)) {
                FileManager.default.fileExists(atPath: pidFile) || !server.isRunning
            }
            guard listening, server.isRunning else { throw HarnessError("qemu-nbd: \(server.stderrSoFar())") }
            let uri = NBDURI(.unix(socket: socket), exportName: exportName).description
            #expect(uri.hasSuffix("/disk%3Fone%26two?socket=\(directory.path)/a%20b/nbd%3F.sock"))
            let connection = try await NBDConnection.connect(uri: uri)
            #expect(connection.info.size == 65536)
            #expect(try await connection.read(count: 65536, at: 0) == bytes)
            await connection.close()
            // The same text pasted together unescaped names another socket and export.
            await #expect(throws: NBDError.self) {
                try await NBDConnection.connect(uri: "nbd+unix:///\(exportName)?socket=\(socket)")
            }
            await server.terminate()
        } catch {
            await server.terminate()
            throw error
        }
    }
}
