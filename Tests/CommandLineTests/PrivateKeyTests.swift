import Foundation
import Testing

extension CopyIntegration {
    /// The secrets pullback reads (a client key, a pre-shared key, a server key) must be their owner's only: one that
    /// group or others may read is refused in one line, before anything is made.
    @Suite("Private key permissions", .serialized)
    struct PrivateKeyTests {
        @Test(
            "copy refuses a client key or a pre-shared key others can read, in one line, before connecting",
            .timeLimit(.minutes(2)))
        func copyRefusesOpenKeys() async throws {
            try await Fixture.run { fx in
                let (certificates, key) = try await Self.openClientKey(fx, mode: 0o644)
                // Nothing listens there: the refusal comes before any connection.
                let socket = fx.path("nobody.sock")
                let target = fx.target()
                let inOption = try await Pullback.copy(
                    fx, ["nbds+unix:///?socket=\(socket)", target, "--tls-certificates", certificates.clientDirectory])
                expectCleanFailure(inOption, mentioning: [key, "chmod 600"])
                let inURI = try await Pullback.copy(
                    fx, ["nbds://127.0.0.1:9/?tls-certificates=\(certificates.clientDirectory)", target])
                expectCleanFailure(inURI, mentioning: [key, "chmod 600"])
                expectNoCopyLeft(at: target)

                guard case .psk(let file, let user) = try await TLSCredentials.makePSK(fx) else {
                    throw HarnessError("a PSK expected")
                }
                try Self.chmod(file, 0o640)
                let psk = try await Pullback.copy(fx, ["nbds://\(user)@127.0.0.1:9/?tls-psk-file=\(file)", target])
                expectCleanFailure(psk, mentioning: [file, "chmod 600"])
                expectNoCopyLeft(at: target)
            }
        }

        @Test("serve refuses a --tls-key others can read, in one line, and makes no socket", .timeLimit(.minutes(2)))
        func serveRefusesOpenKey() async throws {
            try await Fixture.run { fx in
                let certificates = try await TLSCertificates.make(fx)
                let folder = certificates.serverDirectory
                try Self.chmod("\(folder)/server-key.pem", 0o644)
                let image = fx.path("disk.raw")
                try await fx.runChecked(["truncate", "-s", "1M", image])
                let socket = fx.path("serve.sock")
                // A server that accepted the key would serve until stopped: the run's timeout ends it then.
                let result = try await fx.run(
                    [
                        try Pullback.binaryPath(), "serve", "--image", image, "--socket", socket,
                        "--tls-cert", "\(folder)/server-cert.pem", "--tls-key", "\(folder)/server-key.pem",
                    ], timeout: .seconds(30))
                expectCleanFailure(result, mentioning: ["\(folder)/server-key.pem", "chmod 600"])
                #expect(!FileFacts.exists(socket), "no socket was made")
            }
        }

        @Test(
            "a remote backup refuses a client key others can read before libvirt is asked",
            .timeLimit(.minutes(2)))
        func backupRefusesOpenKey() async throws {
            try await Fixture.run { fx in
                let (certificates, key) = try await Self.openClientKey(fx, mode: 0o604)
                let repo = fx.path("repo")
                try requireSuccess(try await Pullback.run(fx, ["init", "--repo", repo]))
                // 192.0.2.1 is TEST-NET-1: a libvirt connection there would hang, not answer.
                let result = try await fx.run(
                    [
                        try Pullback.binaryPath(), "backup", "web1", "--repo", repo, "--connect",
                        "qemu+tcp://192.0.2.1/system", "--nbd-tls-certificates", certificates.clientDirectory,
                    ], timeout: .seconds(60))
                expectCleanFailure(result, mentioning: [key, "chmod 600"])
                #expect(!FileFacts.exists("\(repo)/web1"), "nothing was made")
            }
        }

        /// Certificates whose client key has `mode`, and the key's path.
        static func openClientKey(_ fx: Fixture, mode: Int) async throws -> (TLSCertificates, String) {
            let certificates = try await TLSCertificates.make(fx)
            let key = "\(certificates.clientDirectory)/client-key.pem"
            try chmod(key, mode)
            return (certificates, key)
        }

        static func chmod(_ path: String, _ mode: Int) throws {
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        }
    }
}
