import Foundation
import Testing

extension CopyIntegration {
    /// A TLS server is verified over a unix socket too, where libnbd checks no certificate.
    @Suite("TLS peers over unix sockets", .serialized)
    struct TLSPeerTests {
        @Test(
            "nbds+unix://: a certificate from another CA, or for another name than localhost, is refused; the right one copies",
            .timeLimit(.minutes(3)))
        func unixPeerVerified() async throws {
            try await Fixture.run { fx in
                let image = fx.path("random.raw")
                try await fx.runChecked(["dd", "if=/dev/urandom", "of=\(image)", "bs=64k", "count=16", "status=none"])
                let ours = try await TLSCertificates.make(fx)
                let stranger = try await TLSCertificates.make(fx, name: "stranger")
                let misnamed = try await TLSCertificates.make(fx, name: "misnamed", serverNames: "DNS:other.example")

                let foreign = try await UnixTLSServer.nbdkit(
                    fx, image: image, serverDirectory: stranger.serverDirectory)
                let foreignTarget = fx.target("foreign.raw")
                let refused = try await Pullback.copy(
                    fx, [foreign.uri(certificates: ours.clientDirectory), foreignTarget])
                expectCleanFailure(refused, mentioning: [foreign.socket, "not signed by"])
                expectNoCopyLeft(at: foreignTarget)

                // Signed by the client's CA, but made out to another host than the one checked over a unix socket.
                let other = try await UnixTLSServer.nbdkit(fx, image: image, serverDirectory: misnamed.serverDirectory)
                let otherTarget = fx.target("other.raw")
                let wrongName = try await Pullback.copy(
                    fx, [other.uri(certificates: misnamed.clientDirectory), otherTarget])
                expectCleanFailure(wrongName, mentioning: ["localhost"])
                expectNoCopyLeft(at: otherTarget)
                // The name it is made out to, asked for in the URI, is accepted.
                let named = fx.target("named.raw")
                try requireSuccess(
                    try await Pullback.copy(
                        fx, [other.uri(certificates: misnamed.clientDirectory) + "&tls-hostname=other.example", named]))
                try await fx.runChecked(["cmp", named, image])

                let right = try await UnixTLSServer.nbdkit(fx, image: image, serverDirectory: ours.serverDirectory)
                let target = fx.target()
                try requireSuccess(
                    try await Pullback.copy(fx, [right.uri(certificates: ours.clientDirectory), target]))
                try await fx.runChecked(["cmp", target, image])
                let optioned = fx.target("optioned.raw")
                try requireSuccess(
                    try await Pullback.copy(
                        fx,
                        ["nbds+unix:///?socket=\(right.socket)", optioned, "--tls-certificates", ours.clientDirectory]
                    ))
                try await fx.runChecked(["cmp", optioned, image])
            }
        }
    }
}
