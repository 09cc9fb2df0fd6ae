import Foundation

/// A throwaway x509 PKI made with openssl in the fixture: a CA, a server certificate for 127.0.0.1 and a client
/// certificate, laid out as qemu's `tls-creds-x509` (`ca-cert.pem`, `server-cert.pem`, `server-key.pem`) and
/// libnbd's `tls-certificates=DIR` (`ca-cert.pem`, `client-cert.pem`, `client-key.pem`) expect them.
struct TLSCertificates: Sendable {
    let serverDirectory: String
    let clientDirectory: String

    static func make(_ fixture: Fixture) async throws -> TLSCertificates {
        let pki = try fixture.makeDirectory("pki")
        let curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try await fixture.runChecked(
            ["openssl", "req", "-x509"] + curve + [
                "-keyout", "\(pki)/ca-key.pem", "-out", "\(pki)/ca-cert.pem", "-days", "2",
                "-subj", "/CN=pullback-test-ca", "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            ])
        // No keyUsage on the leaves: qemu checks it against RSA's needs when present.
        let extensions = [
            "server": "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
            "client": "extendedKeyUsage=clientAuth\n",
        ]
        for (role, lines) in extensions {
            let directory = try fixture.makeDirectory("pki/\(role)")
            try FileFacts.create("\(pki)/\(role).ext", with: Data(lines.utf8))
            try await fixture.runChecked(
                ["openssl", "req"] + curve + [
                    "-keyout", "\(directory)/\(role)-key.pem", "-out", "\(pki)/\(role).csr", "-subj", "/CN=127.0.0.1",
                ])
            try await fixture.runChecked([
                "openssl", "x509", "-req", "-in", "\(pki)/\(role).csr", "-CA", "\(pki)/ca-cert.pem",
                "-CAkey", "\(pki)/ca-key.pem", "-CAcreateserial", "-out", "\(directory)/\(role)-cert.pem",
                "-days", "2", "-extfile", "\(pki)/\(role).ext",
            ])
            try FileManager.default.copyItem(atPath: "\(pki)/ca-cert.pem", toPath: "\(directory)/ca-cert.pem")
        }
        return TLSCertificates(serverDirectory: "\(pki)/server", clientDirectory: "\(pki)/client")
    }
}

/// qemu-nbd serving an image on 127.0.0.1 with TLS required (`--tls-creds` over `tls-creds-x509`), stopped at
/// teardown at the latest.
final class TLSServer: Sendable {
    let port: Int
    let certificates: TLSCertificates
    private let process: ChildProcess

    private init(port: Int, certificates: TLSCertificates, process: ChildProcess) {
        self.port = port
        self.certificates = certificates
        self.process = process
    }

    /// `nbds://127.0.0.1:PORT/?tls-certificates=CLIENTDIR`.
    var uri: String { "nbds://127.0.0.1:\(port)/?tls-certificates=\(certificates.clientDirectory)" }
    /// The same export asked for without TLS, which the server refuses.
    var plaintextURI: String { "nbd://127.0.0.1:\(port)/" }

    /// `qemu-nbd --object tls-creds-x509,... --tls-creds tls0 -r -t -b 127.0.0.1 -p PORT -f FORMAT IMAGE` on a free
    /// port picked at random (a few tries).
    static func qemuNBD(_ fixture: Fixture, image: String, format: String = "raw") async throws -> TLSServer {
        let certificates = try await TLSCertificates.make(fixture)
        for _ in 0..<5 {
            let port = Int.random(in: 20000...60000)
            let process = try fixture.spawn(
                [
                    "qemu-nbd", "--object",
                    "tls-creds-x509,id=tls0,dir=\(certificates.serverDirectory),endpoint=server",
                    "--tls-creds", "tls0", "-r", "-t", "-e", "4", "-b", "127.0.0.1", "-p", String(port),
                    "-f", format, image,
                ], label: "qemu-nbd-tls")
            let server = TLSServer(port: port, certificates: certificates, process: process)
            for _ in 0..<100 {
                guard process.isRunning else { break }  // most likely the port is taken: try another
                let probe = try await fixture.run(["nbdinfo", "--size", server.uri], timeout: .seconds(30))
                if probe.succeeded { return server }
                try await Task.sleep(for: .milliseconds(50))
            }
            process.stop()
        }
        throw HarnessError("qemu-nbd with TLS did not start on any of 5 random TCP ports")
    }
}
