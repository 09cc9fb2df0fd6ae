import Foundation
import Testing

extension CopyIntegration.ProbeTests {
    @Test(
        "nbds:// to qemu-nbd requiring TLS: every check runs under TLS and none fails, a plain client is refused with NBD_REP_ERR_TLS_REQD; with another CA the handshake fails on the certificate",
        .timeLimit(.minutes(2)))
    func overTLS() async throws {
        try await Fixture.run { fx in
            let image = fx.path("tls.raw")
            try await fx.runChecked(["dd", "if=/dev/urandom", "of=\(image)", "bs=64k", "count=16", "status=none"])
            try await fx.runChecked(["truncate", "-s", "8M", image])
            let server = try await TLSServer.qemuNBD(fx, image: image)
            // qemu-nbd serves one client at a time by default: the checks that compare connections use one.
            let probe = try await Self.probe(fx, server.uri, ["--connections", "1"])
            #expect(probe.failing.isEmpty, "\(probe.command)")
            let tls = probe.checks.first { $0.name == "handshake.tls" }
            #expect(
                tls?.result == "pass" && tls?.reason?.contains("NBD_REP_ERR_TLS_REQD") == true, "\(probe.command)")
            #expect(probe.passing.isSuperset(of: ["read.first", "read.past-end", "block-status.cover"]))

            let other = try await TLSCertificates.make(fx, name: "other-ca")
            let refused = try await Self.probe(
                fx, "nbds://127.0.0.1:\(server.port)/", ["--tls-certificates", other.clientDirectory])
            #expect(refused.failing == ["handshake.go"], "\(refused.command)")
            #expect(
                refused.checks.first?.reason?.contains("CERTIFICATE_VERIFY_FAILED") == true, "\(refused.command)")
        }
    }
}
