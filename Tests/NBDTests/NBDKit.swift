import Foundation

/// An nbdkit server on a unix socket in its own temporary directory, stopped and removed by `stop()`.
final class NBDKit {
    let directory: URL
    let process = Process()
    var socket: String { directory.appendingPathComponent("nbd.sock").path }
    var uri: String { "nbd+unix:///?socket=\(socket)" }

    init(_ arguments: [String]) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "nbdtests-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/nbdkit")
        // nbdkit writes its pid file only once the socket accepts connections; the socket file alone appears
        // before listen(), and a client connecting then is refused.
        let pidFile = directory.appendingPathComponent("nbdkit.pid").path
        process.arguments = ["--foreground", "-P", pidFile, "-U", socket] + arguments
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: pidFile) {
            guard process.isRunning, Date() < deadline else {
                stop()
                throw NBDKitError(message: "nbdkit \(arguments.joined(separator: " ")) did not start")
            }
            usleep(10_000)
        }
    }

    func stop() {
        if process.isRunning {
            // SIGKILL, not SIGTERM: a child spawned from a Swift concurrency thread inherits that thread's
            // blocked signals, and nbdkit would never see SIGTERM.
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }

    /// Starts nbdkit, runs `body`, and stops nbdkit however `body` ends.
    static func with<T>(_ arguments: [String], _ body: (NBDKit) async throws -> T) async throws -> T {
        let server = try NBDKit(arguments)
        defer { server.stop() }
        return try await body(server)
    }
}

struct NBDKitError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
