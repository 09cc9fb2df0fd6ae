import Foundation
import Testing

extension CopyIntegration {
    /// `copy` allows the TCP and unix transports only, and the TLS files a URI names, so `nbds://` with a certificate
    /// folder works against a qemu-nbd that requires TLS.
    @Suite("Transports and TLS", .serialized)
    struct TLSCopyTests {
        @Test(
            "nbds:// with tls-certificates= copies the bytes; plaintext nbd:// to the TLS server fails in one line",
            .timeLimit(.minutes(2)))
        func tlsCopy() async throws {
            try await Fixture.run { fx in
                let image = fx.path("random.raw")
                try await fx.runChecked(["dd", "if=/dev/urandom", "of=\(image)", "bs=64k", "count=40", "status=none"])
                try await fx.runChecked(["truncate", "-s", "4M", image])  // a hole after the data
                let server = try await TLSServer.qemuNBD(fx, image: image)

                let target = fx.target()
                try requireSuccess(try await Pullback.copy(fx, [server.uri, target]))
                try await expectSameBytes(fx, target, image)
                let qcow2 = fx.target("tls.qcow2")
                try requireSuccess(try await Pullback.copy(fx, ["--format", "qcow2", server.uri, qcow2]))
                try await fx.runChecked(["qemu-img", "compare", "-q", "-f", "qcow2", "-F", "raw", qcow2, image])

                // The folder as an option instead of in the URI; only for nbds:// sources.
                guard case .x509(let certificates) = server.credentials else { throw HarnessError("x509 expected") }
                let optioned = fx.target("optioned.raw")
                try requireSuccess(
                    try await Pullback.copy(
                        fx,
                        [
                            "nbds://127.0.0.1:\(server.port)/", optioned, "--tls-certificates",
                            certificates.clientDirectory,
                        ]))
                try await expectSameBytes(fx, optioned, image)
                let misplaced = try await Pullback.copy(
                    fx, [server.plaintextURI, fx.target("misplaced.raw"), "--tls-certificates", "/nonexistent"])
                #expect(misplaced.exitCode == 64 && misplaced.stderr.contains("nbds://"), "\(misplaced)")

                let plain = fx.target("plain.raw")
                let refused = try await Pullback.copy(fx, [server.plaintextURI, plain])
                expectCleanFailure(refused, mentioning: ["TLS"])
                expectNoCopyLeft(at: plain)
            }
        }

        @Test("nbds:// with tls-psk-file= (a pre-shared key) copies the bytes", .timeLimit(.minutes(2)))
        func pskCopy() async throws {
            try await Fixture.run { fx in
                let image = fx.path("random.raw")
                try await fx.runChecked(["dd", "if=/dev/urandom", "of=\(image)", "bs=64k", "count=17", "status=none"])
                let server = try await TLSServer.qemuNBD(fx, image: image, credentials: try await .makePSK(fx))
                let target = fx.target()
                try requireSuccess(try await Pullback.copy(fx, [server.uri, target]))
                try await expectSameBytes(fx, target, image)
            }
        }

        @Test(
            "nbd+vsock:// is refused in one line without connecting",
            .timeLimit(.minutes(1)),
            arguments: ["nbd+vsock://2:10809/", "nbds+vsock://1/export"])
        func vsockRefused(uri: String) async throws {
            try await Fixture.run { fx in
                let target = fx.target()
                let result = try await Pullback.copy(fx, [uri, target])
                expectCleanFailure(result, mentioning: ["vsock", "not permitted"])
                expectNoCopyLeft(at: target)
            }
        }
    }
}
