import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

extension CopyIntegration.ProbeTests {
    /// A server known to follow the protocol, and what a probe of it must find.
    enum GoodServer: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case qemuNBDReadOnly = "qemu-nbd -r"
        case qemuNBDReadWrite = "qemu-nbd, --write"
        case nbdkitMemory = "nbdkit memory, --write"
        case nbdkitSparseRandom = "nbdkit sparse-random"
        case nbdkitData = "nbdkit data"
        case pullbackServe = "pullback serve --image"
        case nbdServer = "nbd-server, --write"
        case misbehavingServerBehaving = "the misbehaving server with no misbehaviour"

        var testDescription: String { rawValue }

        /// Whether the probe writes: the export is a scratch one.
        var writes: Bool { [.qemuNBDReadWrite, .nbdkitMemory, .nbdServer].contains(self) }

        /// Whether the export is read-only, so that a write must be refused with EPERM.
        var readOnly: Bool { [.qemuNBDReadOnly, .pullbackServe, .misbehavingServerBehaving].contains(self) }

        var probeArguments: [String] { writes ? ["--write"] : [] }

        /// Handshake checks that must pass (not just not fail).
        var handshakePasses: Set<String> {
            var names: Set<String> = [
                "handshake.newstyle", "handshake.no-zeroes", "handshake.list", "handshake.unknown-option",
                "handshake.structured-reply",
            ]
            if self != .nbdServer {
                // nbd-server 3.24 has no structured replies, so no meta contexts.
                names.insert("handshake.meta-context")
            }
            if ![.nbdkitMemory, .nbdkitSparseRandom, .nbdkitData].contains(self) {
                // nbdkit's plugins serve any export name, so they have nothing to refuse.
                names.formUnion(["handshake.unknown-export-info", "handshake.unknown-export-go"])
            }
            return names
        }

        /// Checks of the reads, block status, commands and robustness that must pass.
        var laterPasses: Set<String> {
            var names: Set<String> = [
                "read.first", "read.last-byte", "read.unaligned", "read.max-request", "read.past-end",
                "read.zero-length", "read.connections-agree", "robustness.disconnect-mid-request",
            ]
            if self != .nbdServer {
                names.formUnion(["block-status.cover", "block-status.flags", "block-status.req-one"])
            }
            if ![.nbdServer, .nbdkitData].contains(self) {
                // Exports with zero ranges or holes (nbdkit data's three bytes have none).
                names.formUnion(["block-status.zero-reads-zero", "block-status.hole-reads-zero"])
            }
            if readOnly {
                names.insert("command.write")
            }
            if writes {
                names.formUnion([
                    "command.write", "command.write-zeroes", "command.trim", "command.flush", "command.multi-conn",
                ])
            }
            return names
        }

        /// Starts the server in `fx`; `stop` ends what the fixture would not (nbd-server runs as a daemon).
        func start(_ fx: Fixture) async throws -> (uri: String, stop: @Sendable () -> Void) {
            switch self {
            case .qemuNBDReadOnly:
                let image = try await CopyIntegration.ProbeTests.makeImage(fx)
                return (try await NBDServer.qemuNBD(fx, image: image).uri(), {})
            case .qemuNBDReadWrite:
                let image = fx.path("scratch.qcow2")
                try await fx.runChecked(["qemu-img", "create", "-q", "-f", "qcow2", image, "64M"])
                let socket = fx.path("qemu-nbd.sock")
                let command = ["qemu-nbd", "-t", "-e", "8", "-k", socket, "-f", "qcow2", image]
                let server = try await NBDServer.start(
                    fx, command: command, socket: socket, exportName: "", label: "qemu-nbd")
                return (server.uri(), {})
            case .nbdkitMemory:
                return (try await NBDServer.nbdkit(fx, ["memory", "64M"]).uri(), {})
            case .nbdkitSparseRandom:
                return (try await NBDServer.nbdkit(fx, ["sparse-random", "1G"]).uri(), {})
            case .nbdkitData:
                return (try await NBDServer.nbdkit(fx, ["data", "1 2 3"]).uri(), {})
            case .pullbackServe:
                let image = try await CopyIntegration.ProbeTests.makeImage(fx)
                let socket = fx.path("serve.sock")
                let (_, uris) = try await CopyIntegration.ServeTests.start(
                    fx, ["--socket", socket, "--image", image], exports: 1)
                return (uris[0], {})
            case .nbdServer:
                return try await CopyIntegration.ProbeTests.startNBDServer(fx)
            case .misbehavingServerBehaving:
                return (try await CopyIntegration.ProbeTests.misbehavingServer(fx).uri(), {})
            }
        }
    }

    /// A 64 MiB qcow2 image: data at the start and at the end, an allocated zero range, holes between.
    static func makeImage(_ fx: Fixture) async throws -> String {
        let image = fx.path("disk.qcow2")
        try await fx.runChecked(["qemu-img", "create", "-q", "-f", "qcow2", image, "64M"])
        try await fx.runChecked([
            "qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 1M", "-c", "write -z 8M 1M", "-c", "write -P 0x22 63M 1M",
            image,
        ])
        return image
    }

    /// The reference `nbd-server` on a unix socket of the fixture, serving a 16 MiB scratch file as export
    /// "scratch", from a configuration file of its own. It cannot run in the foreground (its `-d` serves one client
    /// at a time), so it runs as a daemon, which `stop` ends.
    static func startNBDServer(_ fx: Fixture) async throws -> (uri: String, stop: @Sendable () -> Void) {
        let image = fx.path("scratch.raw")
        try await fx.runChecked(["truncate", "-s", "16M", image])
        let socket = fx.path("nbd-server.sock")
        let configuration = fx.path("nbd-server.conf")
        let pidFile = fx.path("nbd-server.pid")
        let text = """
            [generic]
            unixsock = \(socket)
            allowlist = true
            [scratch]
            exportname = \(image)
            flush = true
            fua = true
            trim = true

            """
        try FileFacts.create(configuration, with: Data(text.utf8))
        let uri = "nbd+unix:///scratch?socket=\(socket)"
        let stop: @Sendable () -> Void = { stopDaemon(pidFile: pidFile, named: "nbd-server") }
        do {
            try await fx.runChecked(["nbd-server", "-C", configuration, "-p", pidFile])
            let answers = try await waitUntil(timeout: .seconds(15)) {
                guard FileManager.default.fileExists(atPath: socket) else { return false }
                return (try? await fx.run(["nbdinfo", "--size", uri], timeout: .seconds(10)))?.succeeded == true
            }
            try #require(answers, "nbd-server does not answer on \(socket)")
        } catch {
            stop()
            throw error
        }
        return (uri, stop)
    }

    /// SIGTERM to the daemon whose process id is in `pidFile` (when it is still `name`), and a wait until it is gone.
    static func stopDaemon(pidFile: String, named name: String) {
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
            let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 1
        else { return }
        func state() -> Character? {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return nil }
            return stat[close...].dropFirst(2).first
        }
        let command = (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? ""
        guard command.trimmingCharacters(in: .whitespacesAndNewlines) == name else { return }
        kill(pid, SIGTERM)
        for _ in 0..<500 {
            // Gone, or a zombie its new parent has not reaped yet.
            guard let current = state(), current != "Z" else { return }
            usleep(10_000)
        }
        kill(pid, SIGKILL)
    }
}
