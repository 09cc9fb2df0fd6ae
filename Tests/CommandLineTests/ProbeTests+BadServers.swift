import Foundation
import Testing

extension CopyIntegration.ProbeTests {
    /// One way the misbehaving server breaks the protocol, and the checks that must catch it.
    enum Misbehaviour: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case cover, zero, connections, blocksize

        var testDescription: String {
            switch self {
            case .cover: "block status extents run past the end of the export"
            case .zero: "a range reported ZERO reads as data"
            case .connections: "each connection reads different data"
            case .blocksize: "reads of the advertised maximum block size are refused"
            }
        }

        /// Exactly the checks that fail.
        var failures: Set<String> {
            switch self {
            case .cover: ["block-status.cover"]
            case .zero: ["block-status.zero-reads-zero"]
            case .connections: ["read.connections-agree"]
            // A read of the maximum block size is also what read.max-request does.
            case .blocksize: ["blocksize.requests", "read.max-request"]
            }
        }

        /// What the reason of the first of ``failures`` must say: where the server broke the rule (the export is
        /// 16 MiB; the zero range is at 4 MiB; the maximum block size is 4 MiB).
        var facts: [String] {
            switch self {
            case .cover: ["17825792", "16777216"]
            case .zero: ["4194304", "NBD_STATE_ZERO"]
            case .connections: ["connection"]
            case .blocksize: ["4194304", "EINVAL"]
            }
        }
    }

    @Test(
        "The misbehaving server fails exactly the checks of the rule it breaks", .timeLimit(.minutes(1)),
        arguments: Misbehaviour.allCases)
    func misbehaving(misbehaviour: Misbehaviour) async throws {
        try await Fixture.run { fx in
            let server = try await Self.misbehavingServer(fx, misbehaviour.rawValue)
            let probe = try await Self.probe(fx, server.uri())
            #expect(probe.failing == misbehaviour.failures, "\(probe.command)")
            let first = misbehaviour.failures.sorted().first
            for check in probe.checks where check.name == first {
                for fact in misbehaviour.facts {
                    #expect(check.reason?.contains(fact) == true, "\(check.name) should say \(fact): \(probe.command)")
                }
            }
        }
    }

    /// nbdkit's memory plugin behind the error filter, failing every read with EIO; block status, flush, cache and
    /// the handshake work.
    ///
    /// Failing: every check that reads data, including those that read to see the connection still works after the
    /// request they judge (`read.past-end`, `read.zero-length`, `command.cache`, `robustness.*`). Passing: the
    /// handshake but for `structured-reply` (it compares reads), block status without reads, `command.flush`.
    /// `blocksize.*` skip: nbdkit memory sends no `NBD_INFO_BLOCK_SIZE`.
    @Test("nbdkit's error filter on reads fails the checks that read data, and no other", .timeLimit(.minutes(1)))
    func readErrors() async throws {
        try await Fixture.run { fx in
            let server = try await NBDServer.nbdkit(
                fx, ["--filter=error", "memory", "64M", "error-pread=EIO", "error-pread-rate=100%"])
            let probe = try await Self.probe(fx, server.uri())
            let expected: Set<String> = [
                "handshake.structured-reply", "read.first", "read.last-byte", "read.unaligned", "read.max-request",
                "read.past-end", "read.zero-length", "read.connections-agree", "block-status.zero-reads-zero",
                "block-status.hole-reads-zero", "command.cache", "robustness.disconnect-mid-request",
            ]
            #expect(probe.failing == expected, "\(probe.command)")
            let passing: Set<String> = [
                "handshake.newstyle", "handshake.no-zeroes", "handshake.list", "handshake.unknown-option",
                "handshake.meta-context", "block-status.cover",
                "block-status.flags", "block-status.req-one", "command.flush",
            ]
            #expect(probe.passing == passing, "\(probe.command)")
            for check in probe.checks where check.result == "fail" && check.name != "handshake.structured-reply" {
                #expect(check.reason?.contains("EIO (5)") == true, "\(check.name): \(probe.command)")
            }
        }
    }
}
