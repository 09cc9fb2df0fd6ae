import Foundation
import Testing

extension CopyIntegration {
    /// Servers that fail: nbdkit's error filter failing reads and block status, an nbdkit killed and started again
    /// on the same socket in the middle of a copy, and one whose reads never answer. Each copy either completes
    /// byte for byte or fails in one line leaving no target.
    @Suite("Retries and stall timeouts", .serialized)
    struct FaultTests {
        /// 64 MiB of random data, read in 64 KiB requests: 1024 reads.
        static func randomImage(_ fx: Fixture) async throws -> String {
            let image = fx.path("random.raw")
            try await fx.runChecked(["dd", "if=/dev/urandom", "of=\(image)", "bs=1M", "count=64", "status=none"])
            return image
        }

        @Test(
            "5% of reads and block status fail with EIO: raw and qcow2 copies complete byte for byte, retries counted",
            .timeLimit(.minutes(3)), arguments: ["raw", "qcow2"])
        func transientErrors(format: String) async throws {
            try await Fixture.run { fx in
                let image = try await Self.randomImage(fx)
                let server = try await NBDServer.nbdkit(
                    fx,
                    [
                        "--filter=error", "file", image, "error=EIO", "error-pread-rate=5%",
                        "error-extents-rate=5%",
                    ])
                let target = fx.target("copy.\(format)")
                let copy = try await Pullback.copy(
                    fx, [server.uri(), target, "--format", format, "--request-size", "65536", "--json"])
                try requireSuccess(copy)
                let stats = try CopyStats.decode(stdout: copy.stdout)
                #expect(stats.retries > 10, "about 50 of 1024 reads fail: \(stats)")
                if format == "raw" {
                    try await expectSameBytes(fx, target, image)
                } else {
                    try await Qemu.expectIdentical(fx, target, image)
                    try await Qemu.expectCheckClean(fx, target)
                }
                let sentence = try await Pullback.copy(
                    fx, [server.uri(), fx.target("again.raw"), "--request-size", "65536"])
                try requireSuccess(sentence)
                #expect(sentence.stdout.contains("retried"), "the summary mentions retries: \(sentence)")
            }
        }

        @Test(
            "Every read failing: EIO fails after the retries, EPERM at once; one line, no target",
            .timeLimit(.minutes(2)), arguments: [("EIO", "after 2 retries"), ("EPERM", "Operation not permitted")])
        func permanentErrors(errno: String, words: String) async throws {
            try await Fixture.run { fx in
                let image = try await Self.randomImage(fx)
                let server = try await NBDServer.nbdkit(
                    fx, ["--filter=error", "file", image, "error=\(errno)", "error-pread-rate=100%"])
                let target = fx.target()
                let result = try await Pullback.copy(fx, [server.uri(), target, "--retries", "2"])
                expectCleanFailure(result, mentioning: [words])
                if errno == "EPERM" { #expect(!result.stderr.contains("retr"), "EPERM is not retried: \(result)") }
                expectNoCopyLeft(at: target)
            }
        }

        @Test(
            "nbdkit killed and started again on the same socket mid-copy: the copy reconnects and is exact",
            .timeLimit(.minutes(2)), arguments: ["raw", "qcow2"])
        func serverRestarted(format: String) async throws {
            try await Fixture.run { fx in
                let image = try await Self.randomImage(fx)
                let socket = fx.path("restarting.sock")
                // About 8 s at 64 Mbit/s (the rate filter counts bits), so that the kill lands in the middle.
                let command = ["nbdkit", "-U", socket, "-f", "--filter=rate", "file", image, "rate=64M"]
                let first = try fx.spawn(command, label: "nbdkit-1")
                try #require(
                    try await waitUntil(timeout: .seconds(15)) { FileManager.default.fileExists(atPath: socket) })
                let target = fx.target("copy.\(format)")
                let copy = try Pullback.startCopy(
                    fx, ["nbd+unix:///?socket=\(socket)", target, "--format", format, "--json"])
                try await Task.sleep(for: .milliseconds(1500))
                first.kill()
                _ = try await first.waitForExit(timeout: .seconds(10))
                try? FileManager.default.removeItem(atPath: socket)  // nbdkit does not remove it when killed
                try await Task.sleep(for: .milliseconds(300))
                _ = try fx.spawn(command, label: "nbdkit-2")
                let result = try await copy.waitForExit(timeout: .seconds(90))
                try requireSuccess(result)
                let stats = try CopyStats.decode(stdout: result.stdout)
                #expect(stats.retries > 0, "the kill landed before the copy ended: \(stats)")
                if format == "raw" {
                    try await expectSameBytes(fx, target, image)
                } else {
                    try await Qemu.expectIdentical(fx, target, image)
                }
            }
        }

        @Test(
            "A server whose reads never answer: --stall-timeout 3 fails in one line naming the server, no target",
            .timeLimit(.minutes(1)))
        func stalled() async throws {
            try await Fixture.run { fx in
                let image = try await Self.randomImage(fx)
                for format in ["raw", "qcow2"] {
                    // A server of its own for each copy: one stalled for 300 s per read is no server to share.
                    let server = try await NBDServer.nbdkit(fx, ["--filter=delay", "file", image, "delay-read=300"])
                    let target = fx.target("stalled.\(format)")
                    let result = try await Pullback.copy(
                        fx, [server.uri(), target, "--format", format, "--stall-timeout", "3"])
                    expectCleanFailure(result, mentioning: ["no reply", server.uri(), "3 s", "--stall-timeout"])
                    expectNoCopyLeft(at: target)
                }
            }
        }

        @Test(
            "A server that accepts the connection and never answers: --stall-timeout 3 fails the handshake in one line",
            .timeLimit(.minutes(1)))
        func silentHandshake() async throws {
            try await Fixture.run { fx in
                let socket = fx.path("silent.sock")
                let script = """
                    import socket, time
                    s = socket.socket(socket.AF_UNIX); s.bind(\(String(reflecting: socket))); s.listen(8)
                    held = [s.accept()[0] for _ in range(8)]
                    time.sleep(300)
                    """
                _ = try fx.spawn(["python3", "-c", script], label: "silent-server")
                try #require(
                    try await waitUntil(timeout: .seconds(15)) { FileManager.default.fileExists(atPath: socket) })
                let target = fx.target()
                let result = try await Pullback.copy(
                    fx, ["nbd+unix:///?socket=\(socket)", target, "--stall-timeout", "3"])
                expectCleanFailure(result, mentioning: ["no answer", "3 s", "--stall-timeout", "handshake"])
                expectNoCopyLeft(at: target)
            }
        }

        @Test("--retries and --stall-timeout out of range are usage errors", .timeLimit(.minutes(1)))
        func badOptions() async throws {
            try await Fixture.run { fx in
                for options in [["--retries", "-1"], ["--retries", "101"], ["--stall-timeout", "-5"]] {
                    let result = try await Pullback.copy(
                        fx, ["nbd+unix:///?socket=/nonexistent", fx.target()] + options)
                    #expect(result.exitCode == 64 && result.stderr.contains(options[0]), "\(result)")
                }
            }
        }
    }
}
