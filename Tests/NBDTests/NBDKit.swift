import Foundation
import TestSupport

/// An nbdkit server (in the foreground) on a unix socket in a temporary directory of its own.
struct NBDKit {
    let directory: TemporaryDirectory
    let process: ChildProcess
    var socket: String { directory.file("nbd.sock") }
    var uri: String { "nbd+unix:///?socket=\(socket)" }

    /// Starts nbdkit with `arguments` (plugin, filters, parameters), runs `body`, and stops nbdkit and removes its
    /// directory however `body` ends.
    static func with<T>(_ arguments: [String], _ body: (NBDKit) async throws -> T) async throws -> T {
        let directory = try TemporaryDirectory("nbdtests")
        defer { directory.remove() }
        // nbdkit writes its pid file only once the socket accepts connections; the socket file alone appears
        // before listen(), and a client connecting then is refused.
        let pidFile = directory.file("nbdkit.pid")
        let process = ChildProcess(
            ["nbdkit", "--foreground", "-P", pidFile, "-U", directory.file("nbd.sock")] + arguments,
            logBase: directory.file("nbdkit"))
        try process.start()
        let server = NBDKit(directory: directory, process: process)
        do {
            let listening = try await waitUntil(timeout: .seconds(10)) {
                FileManager.default.fileExists(atPath: pidFile) || !process.isRunning
            }
            guard listening, process.isRunning else {
                throw HarnessError("nbdkit \(arguments.joined(separator: " ")) did not start: \(process.stderrSoFar())")
            }
            let value = try await body(server)
            await process.terminate()
            return value
        } catch {
            await withoutCancellation { await process.terminate() }
            throw error
        }
    }
}
