import Testing

extension CopyIntegration {
    /// ArgumentParser prints a validation error as it is, so a text that quotes something decoded from an argument is
    /// escaped when the error is made.
    @Suite("Escaped argument errors")
    struct EscapedArgumentTests {
        @Test(
            "restore --define names a remote URI's percent-decoded host escaped, on one line",
            .timeLimit(.minutes(1)))
        func remoteHostEscaped() async throws {
            try await Fixture.run { fx in
                let result = try await fx.run([
                    try Pullback.binaryPath(), "restore", "--repo", fx.path("repo"), "web1", "--to", fx.target("out"),
                    "--define", "copy", "--connect", "qemu+tcp://evil%1B%5B2J%0Ahost/system",
                ])
                #expect(result.exitCode == 64, "\(result)")
                #expect(!result.stderr.contains("\u{1B}"), "\(result)")
                let first = result.stderrLines.first ?? ""
                #expect(first.contains("not on evil\\x1b[2J\\x0ahost;"), "\(result)")
                #expect(!FileFacts.exists(fx.target("out")))
            }
        }
    }
}
