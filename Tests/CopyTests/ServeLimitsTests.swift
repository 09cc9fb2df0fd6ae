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
    }
}
