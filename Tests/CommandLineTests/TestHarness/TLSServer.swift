import Foundation

/// A throwaway x509 PKI made with openssl in the fixture: a CA, a server certificate for 127.0.0.1 and a client
/// certificate, laid out as qemu's `tls-creds-x509` (`ca-cert.pem`, `server-cert.pem`, `server-key.pem`) and
/// libnbd's `tls-certificates=DIR` (`ca-cert.pem`, `client-cert.pem`, `client-key.pem`) expect them.
struct TLSCertificates: Sendable {
    let serverDirectory: String
    let clientDirectory: String

    /// Makes the PKI in the fixture's folder `name`; another name makes another, unrelated CA. The server's
    /// certificate names `serverNames` (a subjectAltName list).
    static func make(
        _ fixture: Fixture, name: String = "pki", serverNames: String = "IP:127.0.0.1,DNS:localhost"
    ) async throws -> TLSCertificates {
        let pki = try fixture.makeDirectory(name)
        let curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try await fixture.runChecked(
            ["openssl", "req", "-x509"] + curve + [
                "-keyout", "\(pki)/ca-key.pem", "-out", "\(pki)/ca-cert.pem", "-days", "2",
                "-subj", "/CN=pullback-test-ca", "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            ])
        // No keyUsage on the leaves: qemu checks it against RSA's needs when present.
        let extensions = [
            "server": "subjectAltName=\(serverNames)\nextendedKeyUsage=serverAuth\n",
            "client": "extendedKeyUsage=clientAuth\n",
        ]
        for (role, lines) in extensions {
            let directory = try fixture.makeDirectory("\(name)/\(role)")
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

/// What a TLS server and its clients share: x509 certificates, or a pre-shared key.
enum TLSCredentials: Sendable {
    case x509(TLSCertificates)
    /// `keys.psk` (lines of `USER:HEXKEY`, the file both qemu and libnbd read) and the user whose key it holds.
    case psk(file: String, username: String)

    /// A random 256-bit key for `alice` in `psk/keys.psk`.
    static func makePSK(_ fixture: Fixture) async throws -> TLSCredentials {
        let folder = try fixture.makeDirectory("psk")
        let key = try await fixture.runChecked(["openssl", "rand", "-hex", "32"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try FileFacts.create("\(folder)/keys.psk", with: Data("alice:\(key)\n".utf8))
        // A secret: pullback refuses a key file others can read.
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: "\(folder)/keys.psk")
        return .psk(file: "\(folder)/keys.psk", username: "alice")
    }

    /// The `--object` that gives qemu-nbd the server's side.
    var serverObject: String {
        switch self {
        case .x509(let certificates):
            "tls-creds-x509,id=tls0,dir=\(certificates.serverDirectory),endpoint=server"
        case .psk(let file, _):
            "tls-creds-psk,id=tls0,dir=\((file as NSString).deletingLastPathComponent),endpoint=server"
        }
    }
}

/// qemu-nbd serving an image on 127.0.0.1 with TLS required (`--tls-creds` over `tls-creds-x509` or
/// `tls-creds-psk`), stopped at teardown at the latest.
final class TLSServer: Sendable {
    let port: Int
    let credentials: TLSCredentials
    private let process: ChildProcess

    private init(port: Int, credentials: TLSCredentials, process: ChildProcess) {
        self.port = port
        self.credentials = credentials
        self.process = process
    }

    /// `nbds://127.0.0.1:PORT/?tls-certificates=CLIENTDIR`, or `nbds://USER@127.0.0.1:PORT/?tls-psk-file=FILE` (libnbd
    /// 1.14 takes the PSK user from the URI's user part only).
    var uri: String {
        switch credentials {
        case .x509(let certificates):
            "nbds://127.0.0.1:\(port)/?tls-certificates=\(certificates.clientDirectory)"
        case .psk(let file, let username):
            "nbds://\(username)@127.0.0.1:\(port)/?tls-psk-file=\(file)"
        }
    }
    /// The same export asked for without TLS, which the server refuses.
    var plaintextURI: String { "nbd://127.0.0.1:\(port)/" }

    /// `qemu-nbd --object tls-creds-...,id=tls0,... --tls-creds tls0 -r -t -b 127.0.0.1 -p PORT -f FORMAT IMAGE` on a
    /// free port picked at random (a few tries); x509 certificates made for it unless `credentials` are given.
    static func qemuNBD(
        _ fixture: Fixture, image: String, format: String = "raw", credentials: TLSCredentials? = nil
    ) async throws -> TLSServer {
        let chosen: TLSCredentials
        if let credentials { chosen = credentials } else { chosen = .x509(try await TLSCertificates.make(fixture)) }
        for _ in 0..<5 {
            let port = Int.random(in: 20000...60000)
            let process = try fixture.spawn(
                [
                    "qemu-nbd", "--object", chosen.serverObject, "--tls-creds", "tls0", "-r", "-t", "-e", "4",
                    "-b", "127.0.0.1", "-p", String(port), "-f", format, image,
                ], label: "qemu-nbd-tls")
            let server = TLSServer(port: port, credentials: chosen, process: process)
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

/// nbdkit serving an image read-only on a unix socket with TLS required (`--tls=require --tls-certificates DIR`,
/// DIR holding `ca-cert.pem`, `server-cert.pem`, `server-key.pem`), stopped at teardown at the latest.
struct UnixTLSServer {
    let socket: String
    let process: ChildProcess

    /// `nbds+unix:///?socket=SOCKET&tls-certificates=FOLDER`.
    func uri(certificates folder: String) -> String { "nbds+unix:///?socket=\(socket)&tls-certificates=\(folder)" }

    static func nbdkit(_ fixture: Fixture, image: String, serverDirectory: String) async throws -> UnixTLSServer {
        let socket = fixture.path("tls-\(UInt32.random(in: 0...UInt32.max)).sock")
        let process = try fixture.spawn(
            [
                "nbdkit", "-U", socket, "-f", "-r", "--tls=require", "--tls-certificates", serverDirectory, "file",
                image,
            ], label: "nbdkit-tls")
        let server = UnixTLSServer(socket: socket, process: process)
        let bound = try await waitUntil(timeout: .seconds(15)) {
            FileManager.default.fileExists(atPath: socket) || !process.isRunning
        }
        guard bound, process.isRunning else {
            process.stop()
            throw HarnessError("nbdkit with TLS did not listen on \(socket): \(process.stderrSoFar())")
        }
        // libnbd's nbdinfo checks no certificate over a unix socket, so the server's own folder does for a probe.
        let probe = try await fixture.run(["nbdinfo", "--size", server.uri(certificates: serverDirectory)])
        guard probe.succeeded else { throw HarnessError("nbdkit with TLS does not answer on \(socket): \(probe)") }
        return server
    }
}
