import Foundation
import Testing

#if canImport(FoundationXML)
    import FoundationXML
#endif

extension CopyIntegration.ProbeTests {
    @Test(
        "A server that never speaks: the probe ends, its checks fail saying it sent nothing for --stall-timeout",
        .timeLimit(.minutes(2)))
    func silentServer() async throws {
        try await Fixture.run { fx in
            let socket = fx.path("silent.sock")
            let script = """
                import socket, time
                s = socket.socket(socket.AF_UNIX); s.bind(\(String(reflecting: socket))); s.listen(64)
                print("listening", flush=True)
                time.sleep(600)
                """
            let silent = try fx.spawn(["/usr/bin/python3", "-c", script], label: "silent-server")
            try #require(
                try await waitUntil(timeout: .seconds(15)) { silent.stdoutSoFar().contains("listening") },
                "the silent server did not start: \(silent.result())")
            let junit = fx.path("silent.xml")
            let probe = try await Self.probe(
                fx, "nbd+unix:///?socket=\(socket)", ["--stall-timeout", "2", "--junit", junit])
            #expect(!probe.failing.isEmpty && probe.passing.isEmpty, "\(probe.command)")
            for check in probe.checks where check.result == "fail" {
                #expect(
                    check.reason?.contains("sent nothing for 2 s") == true,
                    "\(check.name) does not say it timed out: \(probe.command)")
            }
            try Self.expectJUnit(junit, matches: probe)
        }
    }

    @Test(
        "--junit has one test case per check of --json, with a failure or skipped element where it says so",
        .timeLimit(.minutes(1)))
    func junitMatchesJSON() async throws {
        try await Fixture.run { fx in
            let server = try await Self.misbehavingServer(fx, Misbehaviour.zero.rawValue)
            let junit = fx.path("probe.xml")
            let probe = try await Self.probe(fx, server.uri(), ["--junit", junit])
            #expect(!probe.passing.isEmpty && !probe.names("skip").isEmpty, "\(probe.command)")
            #expect(!probe.failing.isEmpty, "the zero misbehaviour fails a check: \(probe.command)")
            try Self.expectJUnit(junit, matches: probe)
        }
    }

    /// The JUnit file holds the checks of `probe`, in order, with a failure element exactly for the failed ones and a
    /// skipped element exactly for the skipped ones; the suite's counts agree.
    static func expectJUnit(_ path: String, matches probe: Outcome) throws {
        let document = try XMLDocument(contentsOf: URL(fileURLWithPath: path), options: [])
        let cases = try document.nodes(forXPath: "//testsuite/testcase").compactMap { $0 as? XMLElement }
        let names = cases.map { $0.attribute(forName: "name")?.stringValue ?? "" }
        #expect(cases.count == probe.checks.count, "\(names) against \(probe.command)")
        #expect(names == probe.checks.map(\.name))
        func having(_ child: String) -> Set<String> {
            Set(
                cases.filter { !$0.elements(forName: child).isEmpty }.map {
                    $0.attribute(forName: "name")?.stringValue ?? ""
                })
        }
        #expect(having("failure") == probe.failing)
        #expect(having("skipped") == probe.names("skip"))
        let suite = try #require(try document.nodes(forXPath: "//testsuite").first as? XMLElement)
        #expect(suite.attribute(forName: "tests")?.stringValue == String(probe.checks.count))
        #expect(suite.attribute(forName: "failures")?.stringValue == String(probe.failing.count))
        for failure in try document.nodes(forXPath: "//testcase/failure").compactMap({ $0 as? XMLElement }) {
            let name = (failure.parent as? XMLElement)?.attribute(forName: "name")?.stringValue
            let reason = probe.checks.first { $0.name == name }?.reason
            #expect(failure.attribute(forName: "message")?.stringValue == reason, "\(name ?? "?")")
        }
    }

    @Test(
        "An unparsable URI, --only naming no check, --connections 0: one line, exit 64, nothing written",
        .timeLimit(.minutes(1)))
    func badInput() async throws {
        try await Fixture.run { fx in
            let server = try await Self.misbehavingServer(fx)
            let junit = fx.path("probe.xml")
            let cases: [(arguments: [String], mentioning: [String])] = [
                (["nbd://[::1", "--junit", junit], ["nbd://[::1", "]"]),
                (["http://example.com/disk", "--json"], ["http://example.com/disk", "nbd://"]),
                ([server.uri(), "--only", "read.no-such-check", "--junit", junit], ["--only", "read.no-such-check"]),
                ([server.uri(), "--connections", "0", "--junit", junit], ["--connections", "1-16"]),
            ]
            for (arguments, words) in cases {
                let result = try await Pullback.run(fx, ["probe"] + arguments)
                expectCleanFailure(result, exitCode: 64, mentioning: words)
                #expect(result.stdout.isEmpty, "\(result)")
                #expect(!FileFacts.exists(junit), "\(arguments) wrote \(junit)")
            }
        }
    }
}
