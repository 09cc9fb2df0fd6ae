import Foundation
import Testing

extension CopyIntegration {
    @Suite("Progress output goes to a terminal only", .serialized)
    struct ProgressTests {
        /// Runs pullback under `script`, so its stderr is a pseudo-terminal; stdout goes to a file, so what `script`
        /// captures from the terminal is stderr only.
        static func copyOnTerminal(_ fx: Fixture, _ arguments: [String]) async throws -> (CommandResult, String) {
            let quoted = ([try Pullback.binaryPath(), "copy"] + arguments).map { "'\($0)'" }.joined(separator: " ")
            let stdoutFile = fx.path("copy-\(UInt32.random(in: 0...UInt32.max)).stdout")
            let result = try await fx.run(["script", "-qec", "\(quoted) >'\(stdoutFile)'", "/dev/null"])
            return (result, result.stdout)
        }

        static func source(_ fx: Fixture) async throws -> NBDServer {
            try await NBDServer.nbdkit(fx, ["data", "(0x42)*4194304", "size=8M"])
        }

        @Test("stderr a file: nothing by default, progress with --progress", .timeLimit(.minutes(1)))
        func notATerminal() async throws {
            try await Fixture.run { fx in
                let server = try await Self.source(fx)
                let quiet = try await Pullback.copy(fx, [server.uri(), fx.target("quiet.raw")])
                try requireSuccess(quiet)
                #expect(quiet.stderr.isEmpty, "progress output although stderr is not a terminal: \(quiet)")

                let forced = try await Pullback.copy(fx, [server.uri(), fx.target("forced.raw"), "--progress"])
                try requireSuccess(forced)
                #expect(!forced.stderr.isEmpty, "--progress printed nothing on stderr")
            }
        }

        @Test("stderr a terminal: progress by default, nothing with --no-progress", .timeLimit(.minutes(1)))
        func terminal() async throws {
            try await Fixture.run { fx in
                let server = try await Self.source(fx)
                let (shown, shownTerminal) = try await Self.copyOnTerminal(fx, [server.uri(), fx.target("shown.raw")])
                try requireSuccess(shown)
                #expect(!shownTerminal.isEmpty, "no progress on a terminal")

                let (hidden, hiddenTerminal) = try await Self.copyOnTerminal(
                    fx, [server.uri(), fx.target("hidden.raw"), "--no-progress"])
                try requireSuccess(hidden)
                #expect(hiddenTerminal.isEmpty, "--no-progress still printed on the terminal: \(hiddenTerminal)")
                try await expectSameBytes(fx, fx.target("shown.raw"), fx.target("hidden.raw"))
            }
        }
    }
}
