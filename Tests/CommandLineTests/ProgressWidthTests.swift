import Foundation
import Testing

extension CopyIntegration {
    /// The progress bar on terminals of 80 and 40 columns: no frame is wider than the terminal (a wider one wraps, and
    /// the next frame redraws only its second half), and nothing of the bar is left on the screen at the end.
    @Suite("The progress bar fits the terminal and leaves nothing behind", .serialized)
    struct ProgressWidthTests {
        /// Runs `pullback ARGS...` under `script` on a pseudo-terminal `columns` wide, stdout in a file: the result,
        /// whose stdout is what the terminal showed (stderr alone), and the command's own stdout.
        static func onTerminal(_ fx: Fixture, columns: Int, _ arguments: [String]) async throws -> (
            result: CommandResult, terminal: String, stdout: String
        ) {
            let quoted = ([try Pullback.binaryPath()] + arguments).map { "'\($0)'" }.joined(separator: " ")
            let stdoutFile = fx.path("width-\(UInt32.random(in: 0...UInt32.max)).stdout")
            let shell = "stty cols \(columns) rows 20; exec \(quoted) >'\(stdoutFile)'"
            let result = try await fx.run(["script", "-qfec", shell, "/dev/null"])
            let stdout = (try? String(contentsOfFile: stdoutFile, encoding: .utf8)) ?? ""
            return (result, result.stdout, stdout)
        }

        /// `text` without its terminal control sequences (CSI: ESC [ parameters final byte).
        static func withoutEscapes(_ text: Substring) -> String {
            text.replacingOccurrences(of: "\u{1B}\\[[0-9;?]*[@-~]", with: "", options: .regularExpression)
        }

        /// The frames the terminal was sent: the output cut at every carriage return and line feed (as scalars: Swift
        /// makes one character of CR LF), escapes removed.
        static func frames(_ terminal: String) -> [String] {
            terminal.unicodeScalars.split(whereSeparator: { $0 == "\r" || $0 == "\n" }).map {
                withoutEscapes(Substring(String(String.UnicodeScalarView($0))))
            }
        }

        /// The lines left on a screen after `terminal` is played on it: a carriage return goes back to the start of
        /// the line, a line feed down one line, ESC [ K clears to the end of the line, other escapes do nothing, and
        /// text overwrites what is under the cursor.
        static func screen(_ terminal: String) -> [String] {
            var lines: [[Unicode.Scalar]] = [[]]
            var (row, column) = (0, 0)
            var characters = terminal.unicodeScalars.makeIterator()
            while let character = characters.next() {
                switch character {
                case "\r": column = 0
                case "\n":
                    row += 1
                    if row == lines.count { lines.append([]) }
                case "\u{1B}":
                    guard characters.next() == "[" else { continue }
                    while let next = characters.next() {
                        guard (0x40...0x7E).contains(next.value) else { continue }
                        if next == "K", column < lines[row].count { lines[row].removeSubrange(column...) }
                        break
                    }
                default:
                    while lines[row].count < column { lines[row].append(" ") }
                    if column < lines[row].count {
                        lines[row][column] = character
                    } else {
                        lines[row].append(character)
                    }
                    column += 1
                }
            }
            return lines.map { String(String.UnicodeScalarView($0)) }.filter { !$0.allSatisfy(\.isWhitespace) }
        }

        /// Every frame fits `columns`, and the screen is left with nothing on it.
        static func expectFitting(
            _ terminal: String, columns: Int, _ what: String, sourceLocation: SourceLocation = #_sourceLocation
        ) {
            let frames = frames(terminal)
            #expect(!frames.isEmpty, "\(what): nothing drawn", sourceLocation: sourceLocation)
            for frame in frames where frame.count > columns {
                Issue.record(
                    "\(what): a frame of \(frame.count) columns on a terminal of \(columns): \(frame)",
                    sourceLocation: sourceLocation)
            }
            let remaining = screen(terminal)
            #expect(remaining.isEmpty, "\(what): left on the screen: \(remaining)", sourceLocation: sourceLocation)
        }

        @Test("copy from nbdkit on 80 and 40 columns", .timeLimit(.minutes(2)))
        func copy() async throws {
            try await Fixture.run { fx in
                let server = try await NBDServer.nbdkit(fx, ["data", "(0x42)*4194304", "size=64M"])
                for columns in [80, 40] {
                    let target = fx.target("copy-\(columns).raw")
                    let copied = try await Self.onTerminal(
                        fx, columns: columns, ["copy", server.uri(), target, "--json"])
                    try requireSuccess(copied.result)
                    Self.expectFitting(copied.terminal, columns: columns, "copy on \(columns) columns")
                    #expect(
                        Self.frames(copied.terminal).contains { $0.contains("100%") },
                        "copy on \(columns) columns: no frame at 100 %: \(copied.terminal)")
                    #expect(copied.stdout.hasPrefix("{"), "stdout is not the summary: \(copied.stdout)")
                }
            }
        }

        @Test(
            "backup of a shut-off domain and verify of five disks on 80 and 40 columns: starting shows a step, not 0 B",
            .timeLimit(.minutes(4)))
        func backupAndVerify() async throws {
            let disks = ["vda", "vdb", "vdc", "vdd", "vde"].map { ($0, 16 * mib) }
            try await LibvirtGuest.run(name: "pbg-long-domain-name", disks: disks, running: false) { fx, guest in
                for (target, _) in disks { try await guest.writeOffline(target, "write -P 0x3c 0 4M") }
                for columns in [80, 40] {
                    let backup = try await Self.onTerminal(
                        fx, columns: columns,
                        ["backup", guest.name, "--repo", guest.repo, "--connect", guest.uri, "--quiet"])
                    try requireSuccess(backup.result)
                    Self.expectFitting(backup.terminal, columns: columns, "backup on \(columns) columns")
                    // The second backup is an incremental of an untouched domain, which copies nothing: before the
                    // end the bar names the step (starting, ending the job) instead; the last frame, drawn when
                    // done, may show 0 B.
                    let beforeEnd = Self.frames(backup.terminal).dropLast(2)
                    #expect(
                        !beforeEnd.contains { $0.contains("0 B / 0 B") },
                        "backup on \(columns) columns showed 0 B / 0 B while working: \(backup.terminal)")
                    #expect(backup.stdout.contains("backup"), "stdout is not the summary: \(backup.stdout)")

                    let verify = try await Self.onTerminal(
                        fx, columns: columns, ["verify", "--repo", guest.repo, "--at", "all"])
                    try requireSuccess(verify.result)
                    Self.expectFitting(verify.terminal, columns: columns, "verify on \(columns) columns")
                    #expect(verify.stdout.contains("all as committed"), "verify's stdout: \(verify.stdout)")
                }
            }
        }
    }
}
