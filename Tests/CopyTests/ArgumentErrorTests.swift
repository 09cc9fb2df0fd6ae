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
    }
}
