import Foundation
import Testing

extension CopyIntegration {
    /// `pullback serve` against clients that ask and never listen: replies held for them stay within the budget,
    /// stalled handshakes are dropped, and a well-behaved client is served meanwhile, byte for byte. Its socket and
    /// its errors are its own: a file put in the socket's place survives it, and hostile header strings are escaped.
    @Suite("pullback serve limits", .serialized)
    struct ServeLimitsTests {
        /// A client that negotiates `export` (with `base:allocation` for `status`), then sends 32 MiB reads (`read`)
        /// or block status requests (`status`) forever, never reading a reply; it prints how many it has sent.
        static let greedyClient = """
            import socket, struct, sys
            path, name, mode = sys.argv[1], sys.argv[2].encode(), sys.argv[3]
            s = socket.socket(socket.AF_UNIX); s.connect(path)
            def receive(n):
                data = b''
                while len(data) < n:
                    more = s.recv(n - len(data)); assert more, 'closed'; data += more
                return data
            def option(code, data=b''):
                s.sendall(struct.pack('>QII', 0x49484156454F5054, code, len(data)) + data)
                while True:
                    magic, _, kind, length = struct.unpack('>QIII', receive(20)); receive(length)
                    if kind == 1 or kind & 0x80000000: return kind
            receive(18); s.sendall(struct.pack('>I', 3))
            if mode == 'status':
                assert option(8) == 1
                context = b'base:allocation'
                query = struct.pack('>I', len(name)) + name + struct.pack('>II', 1, len(context)) + context
                assert option(10, query) == 1
            assert option(7, struct.pack('>I', len(name)) + name + struct.pack('>H', 0)) == 1
            command = 0 if mode == 'read' else 7
            cookie = 0
            while True:
                s.sendall(struct.pack('>IHHQQI', 0x25609513, 0, command, cookie, 0, 32 << 20))
                cookie += 1
                print(cookie, flush=True)
            """

        /// A 32 MiB image of 512-byte clusters, data and unallocated in turn, and its raw bytes.
        static func fragmentedImage(_ fx: Fixture) async throws -> (image: String, raw: String) {
            let raw = fx.path("fragmented.raw")
            let image = fx.path("fragmented.qcow2")
            try await fx.runChecked([
                "python3", "-c",
                "import sys; open(sys.argv[1], 'wb').write((bytes(range(256)) * 2 + bytes(512)) * 32768)", raw,
            ])
            try await fx.runChecked([
                "qemu-img", "convert", "-q", "-S", "512", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=512", raw,
                image,
            ])
            return (image, raw)
        }

        /// The resident memory of process `pid` in KiB (`field` VmRSS, or VmHWM for its peak).
        static func memory(_ pid: pid_t, _ field: String = "VmRSS") -> Int {
            let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
            let line = status.split(separator: "\n").first { $0.hasPrefix(field + ":") }
            return Int(line?.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
        }

        /// The CPU time process `pid` has used, in clock ticks (1/100 s).
        static func cpuTicks(_ pid: pid_t) -> Int {
            let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
            let fields = stat.split(separator: ")").last?.split(separator: " ") ?? []
            return fields.count > 13 ? (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0) : 0
        }

        /// The number of requests a `greedyClient` has printed that it sent.
        static func sent(_ client: ChildProcess) -> Int {
            let printed = (try? String(contentsOfFile: client.stdoutPath, encoding: .utf8)) ?? ""
            return Int(printed.split(separator: "\n").last ?? "") ?? 0
        }

        @Test(
            "Clients pipelining 32 MiB reads and block status without reading replies: the server's memory stays bounded; another client copies meanwhile",
            .timeLimit(.minutes(3)))
        func greedyClients() async throws {
            try await Fixture.run { fx in
                let (image, raw) = try await Self.fragmentedImage(fx)
                let socket = fx.path("serve.sock")
                let server = try await ServeTests.serve(fx, images: [image], socket: socket)
                let bound = 400 << 10  // KiB: the reply budget and a generous baseline
                let greedy = try ["read", "status"].map { mode in
                    try fx.spawn(
                        ["python3", "-c", Self.greedyClient, socket, "fragmented.qcow2", mode], label: "greedy-\(mode)")
                }
                // Both are under way: the server has taken more than one request of each.
                var peak = 0
                let started = try await waitUntil(timeout: .seconds(60)) {
                    peak = max(peak, Self.memory(server.pid))
                    return peak > bound || greedy.allSatisfy { Self.sent($0) > 1 } || !greedy.allSatisfy(\.isRunning)
                }
                #expect(started && greedy.allSatisfy(\.isRunning), "\(greedy.map { $0.result() })")

                // A well-behaved client copies the export meanwhile, byte for byte.
                let copy = fx.target("copy.raw")
                let copying = try fx.spawn(
                    ["nbdcopy", "nbd+unix:///fragmented.qcow2?socket=\(socket)", copy], label: "copy")
                try await waitUntil(timeout: .seconds(90)) {
                    peak = max(peak, Self.memory(server.pid))
                    return peak > bound || !copying.isRunning
                }
                // Then the greedy ones go on a while longer: the server must not grow.
                for _ in 0..<50 where peak <= bound {
                    peak = max(peak, Self.memory(server.pid))
                    try await Task.sleep(for: .milliseconds(100))
                }
                peak = max(peak, Self.memory(server.pid, "VmHWM"))
                #expect(peak < bound, "the server's peak RSS: \(peak) KiB")
                let copied = try await copying.waitForExit(timeout: .seconds(90))
                #expect(copied.succeeded, "\(copied)")
                if copied.succeeded { try await fx.runChecked(["cmp", copy, raw]) }
                #expect(server.isRunning, "the server stays up")
                for client in greedy { client.stop() }
            }
        }

        @Test(
            "Nine clients leaving 64 MiB of replies each unread, more than the server's 512 MiB: dropped after --stall-timeout, and another client copies",
            .timeLimit(.minutes(3)))
        func unreadRepliesAreDropped() async throws {
            try await Fixture.run { fx in
                let raw = fx.path("data.raw")
                try await fx.runChecked([
                    "python3", "-c", "import os, sys; open(sys.argv[1], 'wb').write(os.urandom(32 << 20))", raw,
                ])
                let socket = fx.path("serve.sock")
                let (server, _) = try await ServeTests.start(
                    fx, ["--socket", socket, "--image", raw, "--stall-timeout", "2"], exports: 1)
                // Each takes its connection's 64 MiB; together they would hold the whole server budget for good.
                let greedy = try (0..<9).map { index in
                    try fx.spawn(
                        ["python3", "-c", Self.greedyClient, socket, "data.raw", "read"], label: "greedy-\(index)")
                }
                try await Task.sleep(for: .seconds(1))
                let copy = fx.target("copy.raw")
                let copying = try fx.spawn(["nbdcopy", "nbd+unix:///data.raw?socket=\(socket)", copy], label: "copy")
                // The server closes each greedy connection: its next send fails and it exits.
                let dropped = try await waitUntil(timeout: .seconds(60)) { !greedy.contains(where: \.isRunning) }
                #expect(dropped, "greedy clients still connected: \(greedy.filter(\.isRunning).count)")
                let copied = try await copying.waitForExit(timeout: .seconds(60))
                #expect(copied.succeeded, "\(copied)")
                if copied.succeeded { try await fx.runChecked(["cmp", copy, raw]) }
                #expect(server.isRunning, "the server stays up")
                for client in greedy { client.stop() }
            }
        }

        /// Opens `count` connections that stop in the middle of an option, then waits until the server has closed
        /// each; prints how many it opened and how many were closed.
        static let stalledClients = """
            import socket, struct, sys, time, selectors
            path, count = sys.argv[1], int(sys.argv[2])
            selector = selectors.DefaultSelector()
            for _ in range(count):
                s = socket.socket(socket.AF_UNIX); s.connect(path)
                try:
                    s.sendall(struct.pack('>I', 3) + struct.pack('>Q', 0x49484156454F5054) + b'\\0\\0')
                except OSError:
                    pass  # refused at once
                selector.register(s, selectors.EVENT_READ)
            closed, deadline = 0, time.time() + 100
            while closed < count and time.time() < deadline:
                for key, _ in selector.select(1):
                    try:
                        data = key.fileobj.recv(4096)
                    except OSError:
                        data = b''
                    if not data:
                        selector.unregister(key.fileobj); key.fileobj.close(); closed += 1
            print(count, closed)
            """

        @Test(
            "3,000 clients stalled mid-handshake are dropped; under 256 descriptors a legitimate client gets in and copies",
            .timeLimit(.minutes(4)))
        func stalledHandshakes() async throws {
            try await Fixture.run { fx in
                let (top, _) = try await ServeTests.makeImages(fx)
                let socket = fx.path("serve.sock")
                let uri = "nbd+unix:///top.qcow2?socket=\(socket)"
                // More connections allowed than descriptors: accept meets EMFILE while the stalled clients are held.
                let server = try await ServeTests.start(
                    fx,
                    [
                        "--image", top, "--socket", socket, "--handshake-timeout", "2", "--max-connections", "1000",
                    ],
                    exports: 1, under: ["prlimit", "--nofile=256"]
                ).server
                let stalled = try fx.spawn(["python3", "-c", Self.stalledClients, socket, "3000"], label: "stalled")
                // While they hold every descriptor, accept fails; the server must wait, not spin on it.
                try await Task.sleep(for: .seconds(1))
                let (before, start) = (Self.cpuTicks(server.pid), Date())
                try await Task.sleep(for: .seconds(3))
                let busy = Double(Self.cpuTicks(server.pid) - before) / 100 / Date().timeIntervalSince(start)
                #expect(busy < 0.5, "the server kept \(busy) of a core busy with stalled clients")
                let served = try await waitUntil(timeout: .seconds(100), every: .milliseconds(500)) {
                    try await fx.run(["nbdinfo", "--size", uri], timeout: .seconds(30)).stdout == "67108864\n"
                }
                #expect(served, "nbdinfo was served while stalled clients came and went")
                let ended = try await stalled.waitForExit(timeout: .seconds(120))
                #expect(ended.stdout == "3000 3000\n", "every stalled client was dropped: \(ended)")
                #expect(server.isRunning, "the server stays up")
                let copy = fx.target("copy.raw")
                try await fx.runChecked(["nbdcopy", uri, copy])
                try await fx.runChecked(["qemu-img", "compare", "-f", "raw", copy, "-F", "qcow2", top])
                let descriptors = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(server.pid)/fd").count
                #expect(descriptors < 64, "descriptors the server still holds: \(descriptors)")

                // One connection over --max-connections is closed at once, and the others are served.
                let limited = fx.path("limited.sock")
                _ = try await ServeTests.start(
                    fx, ["--image", top, "--socket", limited, "--max-connections", "2"], exports: 1)
                let probe = """
                    import socket, sys
                    held = [socket.socket(socket.AF_UNIX) for _ in range(2)]
                    for s in held: s.connect(sys.argv[1]); assert len(s.recv(18)) == 18
                    extra = socket.socket(socket.AF_UNIX); extra.connect(sys.argv[1])
                    print(extra.recv(18) == b'')
                    """
                let refused = try await fx.runChecked(["python3", "-c", probe, limited])
                #expect(refused.stdout == "True\n", "\(refused)")
                try await fx.runChecked(["nbdinfo", "--size", "nbd+unix:///top.qcow2?socket=\(limited)"])
            }
        }

        @Test(
            "A file put in place of the socket stays when the server ends on SIGINT or SIGTERM", .timeLimit(.minutes(1))
        )
        func foreignFileAtSocketPath() async throws {
            try await Fixture.run { fx in
                let (top, _) = try await ServeTests.makeImages(fx)
                for signal in [SIGINT, SIGTERM] {
                    let socket = fx.path("serve-\(signal).sock")
                    let server = try await ServeTests.serve(fx, images: [top], socket: socket)
                    try FileManager.default.removeItem(atPath: socket)
                    try Data("not the server's\n".utf8).write(to: URL(fileURLWithPath: socket))
                    server.send(signal)
                    let ended = try await server.waitForExit(timeout: .seconds(20))
                    #expect(ended.succeeded, "\(ended)")
                    #expect(try String(contentsOfFile: socket, encoding: .utf8) == "not the server's\n")
                }
            }
        }

        @Test(
            "A backing file name with escape sequences is printed escaped, in one error line", .timeLimit(.minutes(1)))
        func hostileBackingName() async throws {
            try await Fixture.run { fx in
                let top = fx.path("top.qcow2")
                try await fx.runChecked([
                    "qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", "evil\u{1b}]0;owned\u{07}.qcow2", "-F",
                    "qcow2", top, "1M",
                ])
                let result = try await fx.run([
                    try Pullback.binaryPath(), "serve", "--image", top, "--socket", fx.path("serve.sock"),
                ])
                expectCleanFailure(result, mentioning: ["evil\\x1b]0;owned\\x07.qcow2"])
                #expect(!result.stderr.unicodeScalars.contains { $0.value == 0x1b || $0.value == 0x07 }, "\(result)")
            }
        }
    }
}
