import Testing

extension CopyIntegration {
    @Suite("Argument errors", .serialized)
    struct ArgumentErrorTests {
        @Test(
            "--connections outside 1...16 is an argument error (exit 64) and creates nothing", .timeLimit(.minutes(1)),
            arguments: ["0", "17", "-1"])
        func connectionsOutOfRange(value: String) async throws {
            try await Fixture.run { fx in
                let server = try await NBDServer.nbdkit(fx, ["data", "0x5a", "size=4096"])
                let target = fx.target()
                let result = try await Pullback.copy(fx, [server.uri(), target, "--connections=\(value)"])
                #expect(result.signal == nil && result.exitCode == 64, "\(result)")
                expectNoCopyLeft(at: target)
            }
        }

        @Test(
            "restore --define with a remote URI, and malformed --nbd-ports, are argument errors",
            .timeLimit(.minutes(1)))
        func remoteArguments() async throws {
            try await Fixture.run { fx in
                let binary = try Pullback.binaryPath()
                let define = try await fx.run([
                    binary, "restore", "--repo", fx.path("repo"), "web1", "--to", fx.target("out"), "--define", "copy",
                    "--connect", "qemu+tcp://hv1.example/system",
                ])
                #expect(define.exitCode == 64 && define.stderr.contains("hv1.example"), "\(define)")
                #expect(!FileFacts.exists(fx.target("out")))
                for ports in ["5-3", "0-10", "10809-70000", "x"] {
                    let backup = try await fx.run([
                        binary, "backup", "web1", "--repo", fx.path("repo"), "--nbd-ports", ports,
                    ])
                    #expect(backup.exitCode == 64 && backup.stderr.contains("--nbd-ports"), "\(backup)")
                }
                #expect(!FileFacts.exists(fx.path("repo")))
            }
        }
    }
}
