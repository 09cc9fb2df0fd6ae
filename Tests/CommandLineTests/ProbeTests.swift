import Foundation
import Testing

extension CopyIntegration {
    /// `pullback probe` against real servers the tests start and stop: known-good servers pass every check that
    /// applies, known-bad ones fail exactly the checks of the rules they break, a server that never speaks cannot make
    /// it hang, and bad input is one line.
    @Suite("pullback probe", .serialized)
    struct ProbeTests {
        @Test(
            "A known-good server fails no check, and passes the ones that apply to it", .timeLimit(.minutes(2)),
            arguments: GoodServer.allCases)
        func knownGood(server: GoodServer) async throws {
            try await Fixture.run { fx in
                let started = try await server.start(fx)
                defer { started.stop() }
                let probe = try await Self.probe(fx, started.uri, server.probeArguments)
                #expect(probe.failing.isEmpty, "\(probe.command)")
                if server == .nbdServer {
                    // nbd-server 3.24 answers NBD_OPT_INFO with 0 bytes before NBD_OPT_GO opens the file: noted.
                    let list = probe.checks.first { $0.name == "handshake.list" }
                    #expect(
                        list?.reason?.contains("NBD_OPT_INFO gives \"scratch\" 0 bytes") == true, "\(probe.command)")
                }
                let handshake = server.handshakePasses
                #expect(
                    probe.passing.isSuperset(of: handshake),
                    "\(handshake.subtracting(probe.passing).sorted()) did not pass: \(probe.command)")
                let later = server.laterPasses
                #expect(
                    probe.passing.isSuperset(of: later),
                    "\(later.subtracting(probe.passing).sorted()) did not pass: \(probe.command)")
            }
        }
    }
}

extension CopyIntegration.ProbeTests {
    /// What `pullback probe --json` printed, and how it ended.
    struct Outcome {
        /// One check of the report.
        struct Check: Decodable {
            let name: String
            let result: String
            let reason: String?
        }

        private struct Report: Decodable {
            let uri: String
            let checks: [Check]
        }

        let command: CommandResult
        let checks: [Check]

        /// Parses the one line of JSON `command` printed.
        init(_ command: CommandResult, uri: String) throws {
            self.command = command
            let lines = command.stdout.split(separator: "\n")
            try #require(lines.count == 1, "--json prints one line: \(command)")
            let report = try JSONDecoder().decode(Report.self, from: Data(lines[0].utf8))
            #expect(report.uri == uri)
            checks = report.checks
        }

        /// The names of the checks with `result` (pass, fail, skip).
        func names(_ result: String) -> Set<String> { Set(checks.filter { $0.result == result }.map(\.name)) }
        var failing: Set<String> { names("fail") }
        var passing: Set<String> { names("pass") }
    }

    /// `pullback probe URI --json ARGUMENTS`; the exit code must be 1 exactly when a check failed.
    static func probe(_ fx: Fixture, _ uri: String, _ arguments: [String] = []) async throws -> Outcome {
        let result = try await Pullback.run(fx, ["probe", uri, "--json"] + arguments, timeout: .seconds(100))
        try #require(result.signal == nil && [0, 1].contains(result.exitCode), "\(result)")
        let outcome = try Outcome(result, uri: uri)
        try #require(!outcome.checks.isEmpty, "no check ran: \(result)")
        #expect(result.exitCode == (outcome.failing.isEmpty ? 0 : 1), "exit 1 exactly when a check fails: \(result)")
        #expect(Set(outcome.checks.map(\.result)).isSubset(of: ["pass", "fail", "skip"]), "\(result)")
        return outcome
    }

    /// The misbehaving server (Tests/Fixtures/misbehaving-nbd-server.py): a correct read-only server of 16 MiB,
    /// but for `misbehaviour` (cover, zero, connections, blocksize).
    static func misbehavingServer(_ fx: Fixture, _ misbehaviour: String? = nil) async throws -> NBDServer {
        // #filePath is <root>/Tests/CommandLineTests/ProbeTests.swift
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/misbehaving-nbd-server.py").path
        let socket = fx.path("misbehaving.sock")
        let command =
            ["/usr/bin/python3", script, "--socket", socket] + (misbehaviour.map { ["--misbehave", $0] } ?? [])
        return try await NBDServer.start(fx, command: command, socket: socket, exportName: "", label: "misbehaving")
    }
}
