import Foundation
import Testing

extension CopyIntegration {
    /// `backup`, `restore` and `verify` draw one progress bar on a terminal, and leave stdout as it was.
    @Suite("Long commands draw a progress bar on a terminal", .serialized)
    struct LongCommandProgressTests {
        /// Runs `pullback ARGS...` under `script`, so its stderr is a pseudo-terminal, with stdout in a file: returns
        /// the result (whose stdout is what the terminal showed, i.e. stderr) and the command's own stdout.
        static func onTerminal(_ fx: Fixture, _ arguments: [String]) async throws -> (
            result: CommandResult, terminal: String, stdout: String
        ) {
            let quoted = ([try Pullback.binaryPath()] + arguments).map { "'\($0)'" }.joined(separator: " ")
            let stdoutFile = fx.path("long-\(UInt32.random(in: 0...UInt32.max)).stdout")
            let result = try await fx.run(["script", "-qec", "\(quoted) >'\(stdoutFile)'", "/dev/null"])
            let stdout = (try? String(contentsOfFile: stdoutFile, encoding: .utf8)) ?? ""
            return (result, result.stdout, stdout)
        }

        /// The percentages the bar showed, in order.
        static func percentages(_ terminal: String) -> [Int] {
            terminal.split(whereSeparator: { $0 == "\r" || $0 == "\n" }).compactMap { frame in
                guard let sign = frame.firstIndex(of: "%") else { return nil }
                let digits = frame[..<sign].reversed().prefix { $0 == " " || $0.isNumber }
                return Int(String(digits.reversed()).trimmingCharacters(in: .whitespaces))
            }
        }

        /// A percentage that moved: some frame below 100 %, and the last one at 100 %.
        static func expectMoving(_ terminal: String, _ what: String, sourceLocation: SourceLocation = #_sourceLocation)
        {
            let shown = percentages(terminal)
            #expect(
                shown.last == 100, "\(what): the bar did not end at 100 %: \(terminal)", sourceLocation: sourceLocation)
            #expect(
                shown.contains { $0 < 100 }, "\(what): the percentage never moved before the end: \(shown)",
                sourceLocation: sourceLocation)
        }

        @Test(
            "backup, restore and verify of a 4 GiB disk show a moving percentage; --json stdout is the summary alone",
            .timeLimit(.minutes(5)))
        func backupRestoreVerify() async throws {
            try await LibvirtGuest.run(disks: [("vda", 4096 * mib), ("vdb", 64 * mib)]) { fx, guest in
                // Enough data that copying it takes several redraws of the bar.
                for offset in stride(from: 0, to: 1024, by: 256) {
                    try await guest.write("vda", "write -P 0x5a \(offset)M 256M")
                }
                try await guest.write("vdb", "write -P 0x5b 0 8M")

                let backup = try await Self.onTerminal(
                    fx, ["backup", guest.name, "--repo", guest.repo, "--connect", guest.uri, "--json"])
                try requireSuccess(backup.result)
                Self.expectMoving(backup.terminal, "backup")
                let summary = try JSONSerialization.jsonObject(with: Data(backup.stdout.utf8)) as? [String: Any]
                #expect(summary?["level"] as? String == "full", "stdout is not the JSON summary: \(backup.stdout)")
                #expect(backup.stdout.split(separator: "\n").count == 1, "more than the summary on stdout")
                #expect(!backup.stdout.contains("%"), "progress on stdout: \(backup.stdout)")

                let restore = try await Self.onTerminal(
                    fx, ["restore", "--repo", guest.repo, guest.name, "--to", fx.target("restored"), "--format", "raw"])
                try requireSuccess(restore.result)
                Self.expectMoving(restore.terminal, "restore")
                #expect(restore.stdout.split(separator: "\n").count == 2, "restore's stdout changed: \(restore.stdout)")
                #expect(!restore.stdout.contains("%"), "progress on stdout: \(restore.stdout)")
                try await expectSameBytes(fx, fx.target("restored") + "/vda.raw", guest.reference("vda"))

                let verify = try await Self.onTerminal(fx, ["verify", "--repo", guest.repo, guest.name, "--json"])
                try requireSuccess(verify.result)
                Self.expectMoving(verify.terminal, "verify")
                let report = try JSONSerialization.jsonObject(with: Data(verify.stdout.utf8)) as? [String: Any]
                #expect((report?["images"] as? [Any])?.count == 2, "stdout is not the JSON report: \(verify.stdout)")
                #expect(verify.stdout.split(separator: "\n").count == 1, "more than the report on stdout")
            }
        }

        @Test("--no-progress draws nothing on a terminal; --progress draws with stderr a file", .timeLimit(.minutes(3)))
        func flags() async throws {
            try await LibvirtGuest.run { fx, guest in
                try await guest.write("vda", "write -P 0x61 0 4M")
                let hidden = try await Self.onTerminal(
                    fx, ["backup", guest.name, "--repo", guest.repo, "--connect", guest.uri, "--json", "--no-progress"])
                try requireSuccess(hidden.result)
                #expect(Self.percentages(hidden.terminal).isEmpty, "--no-progress drew a bar: \(hidden.terminal)")

                let verify = try await guest.pullback(["verify", "--repo", guest.repo, guest.name, "--progress"])
                try requireSuccess(verify)
                #expect(Self.percentages(verify.stderr).last == 100, "--progress drew no bar: \(verify.stderr)")

                let restore = try await guest.pullback([
                    "restore", "--repo", guest.repo, guest.name, "--to", fx.target("quiet"),
                ])
                try requireSuccess(restore)
                #expect(restore.stderr.isEmpty, "restore wrote on stderr, which is not a terminal: \(restore.stderr)")
            }
        }
    }
}
