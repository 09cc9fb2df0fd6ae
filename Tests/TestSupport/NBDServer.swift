import Foundation

/// An NBD server (qemu-nbd or nbdkit) listening on a unix socket inside the fixture (or on 127.0.0.1). It is stopped
/// at teardown at the latest; tests stop it earlier when they need to write to its image.
///
/// No `nbdkit --exit-with-parent`: it uses PR_SET_PDEATHSIG, which fires when the *thread* that spawned the server
/// exits, and Swift concurrency's pool threads come and go.
package final class NBDServer: Sendable {
    /// The unix socket, or nil for a server on TCP.
    package let socket: String?
    /// The TCP port on 127.0.0.1, or nil for a server on a unix socket.
    package let port: Int?
    package let exportName: String
    private let process: ChildProcess

    private init(socket: String?, port: Int?, exportName: String, process: ChildProcess) {
        self.socket = socket
        self.port = port
        self.exportName = exportName
        self.process = process
    }

    /// The URI of this server's export, or of another export name on the same server.
    package func uri(export: String? = nil) -> String {
        if let port {
            return "nbd://127.0.0.1:\(port)/\(export ?? exportName)"
        }
        return "nbd+unix:///\(export ?? exportName)?socket=\(socket ?? "")"
    }

    /// Stops the server and waits until it has exited (so its image lock is released).
    package func stop() {
        process.stop()
    }

    /// SIGKILL to the server, as a crash would end it: its clients see the connection drop.
    package func kill() {
        process.kill()
    }

    /// `qemu-nbd -r -t -k SOCK -f FORMAT -e SHARED [-x NAME] [-B BITMAP] IMAGE`.
    ///
    /// `shared` above 1 makes qemu-nbd advertise multi-conn. `throttleBytesPerSecond` puts a throttle filter in front
    /// of the image so a copy takes long enough to be interrupted; the bitmap is still found through the filter.
    package static func qemuNBD(
        _ fixture: Fixture,
        image: String,
        format: String = "qcow2",
        bitmap: String? = nil,
        exportName: String = "",
        shared: Int = 8,
        throttleBytesPerSecond: Int? = nil
    ) async throws -> NBDServer {
        let socket = fixture.path("qemu-nbd-\(UInt32.random(in: 0...UInt32.max)).sock")
        var command = ["qemu-nbd", "-r", "-t", "-k", socket, "-e", String(shared)]
        if !exportName.isEmpty {
            command += ["-x", exportName]
        }
        if let bitmap {
            command += ["-B", bitmap]
        }
        if let rate = throttleBytesPerSecond {
            command += [
                "--object", "throttle-group,id=tg0,x-bps-read=\(rate)",
                "--image-opts",
                "driver=throttle,throttle-group=tg0,file.driver=\(format),file.file.driver=file,"
                    + "file.file.filename=\(image)",
            ]
        } else {
            command += ["-f", format, image]
        }
        return try await start(fixture, command: command, socket: socket, exportName: exportName, label: "qemu-nbd")
    }

    /// `nbdkit -U SOCK -f ARGS...`, e.g. `["data", "0x5a", "size=1"]` or `["--filter=rate", "memory", ...]`.
    package static func nbdkit(_ fixture: Fixture, _ arguments: [String]) async throws -> NBDServer {
        let socket = fixture.path("nbdkit-\(UInt32.random(in: 0...UInt32.max)).sock")
        let command = ["nbdkit", "-U", socket, "-f"] + arguments
        return try await start(fixture, command: command, socket: socket, exportName: "", label: "nbdkit")
    }

    /// `nbdkit -i 127.0.0.1 -p PORT -f ARGS...` on a free port picked at random (a few tries).
    package static func nbdkitTCP(_ fixture: Fixture, _ arguments: [String]) async throws -> NBDServer {
        for _ in 0..<5 {
            let port = Int.random(in: 20000...60000)
            let command = ["nbdkit", "-i", "127.0.0.1", "-p", String(port), "-f"] + arguments
            let process = try fixture.spawn(command, label: "nbdkit-tcp")
            let server = NBDServer(socket: nil, port: port, exportName: "", process: process)
            for _ in 0..<100 {
                guard process.isRunning else { break }  // most likely the port is taken: try another
                let probe = try await fixture.run(["nbdinfo", "--size", server.uri()], timeout: .seconds(30))
                if probe.succeeded { return server }
                try await Task.sleep(for: .milliseconds(50))
            }
            server.stop()
        }
        throw HarnessError("nbdkit did not start on any of 5 random TCP ports")
    }

    /// `nbdkit ARGS...` on a unix socket in a fixture of its own for the length of `body`, for tests that need
    /// nothing else from a fixture; the server is stopped and the fixture removed however `body` ends.
    package static func withNBDKit<T>(_ arguments: [String], _ body: (NBDServer) async throws -> T) async throws -> T {
        try await Fixture.run { fixture in
            try await body(try await nbdkit(fixture, arguments))
        }
    }

    /// Starts `command`, a server that listens on the unix `socket` (a test's own server), and returns once it answers.
    package static func start(
        _ fixture: Fixture,
        command: [String],
        socket: String,
        exportName: String,
        label: String
    ) async throws -> NBDServer {
        let process = try fixture.spawn(command, label: label)
        let server = NBDServer(socket: socket, port: nil, exportName: exportName, process: process)
        let bound = try await waitUntil(timeout: .seconds(15)) {
            FileManager.default.fileExists(atPath: socket) || !process.isRunning
        }
        guard process.isRunning else {
            throw HarnessError("\(label) exited before listening: \(process.result())")
        }
        guard bound else {
            server.stop()
            throw HarnessError("\(label) did not create \(socket) within 15 s: \(process.stderrSoFar())")
        }
        // The socket file appears at bind(), before listen(): a connection in between is refused. Ask for the size until
        // the server answers (a loaded machine widens the gap), so that it surely accepts connections.
        var probe = try await fixture.run(["nbdinfo", "--size", server.uri()], timeout: .seconds(30))
        for _ in 0..<50 where !probe.succeeded && probe.stderr.contains("Connection refused") && process.isRunning {
            try await Task.sleep(for: .milliseconds(100))
            probe = try await fixture.run(["nbdinfo", "--size", server.uri()], timeout: .seconds(30))
        }
        guard probe.succeeded else {
            throw HarnessError("\(label) does not answer on \(socket): \(probe)")
        }
        return server
    }
}
