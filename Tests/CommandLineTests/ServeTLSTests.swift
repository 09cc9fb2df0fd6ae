import Foundation
import Testing

extension CopyIntegration {
    /// `pullback serve` with TLS required: libnbd's clients (nbdinfo, nbdcopy) and pullback's own read over `nbds://`
    /// with a certificate folder the test makes; plaintext clients, clients without a certificate and clients that
    /// break the STARTTLS rules are refused while the server goes on.
    @Suite("pullback serve with TLS", .serialized)
    struct ServeTLSTests {
        /// The server's side of `certificates` as `serve` options, with client certificates required.
        static func tlsOptions(_ certificates: TLSCertificates) -> [String] {
            let folder = certificates.serverDirectory
            return [
                "--tls-cert", "\(folder)/server-cert.pem", "--tls-key", "\(folder)/server-key.pem",
                "--tls-ca", "\(folder)/ca-cert.pem",
            ]
        }

        @Test(
            "nbds:// over TCP and a unix socket: nbdinfo, nbdcopy and pullback copy read the chain; plaintext and certificate-less clients are refused",
            .timeLimit(.minutes(2)))
        func tlsClients() async throws {
            try await Fixture.run { fx in
                let (top, _) = try await ServeTests.makeImages(fx)
                let certificates = try await TLSCertificates.make(fx)
                let clientFolder = certificates.clientDirectory
                let (server, uris) = try await ServeTests.start(
                    fx, ["--image", top, "--listen", "127.0.0.1:0"] + Self.tlsOptions(certificates), exports: 1)
                try #require(uris[0].hasPrefix("nbds://127.0.0.1:") && uris[0].hasSuffix("/top.qcow2"), "\(uris)")
                let uri = uris[0] + "?tls-certificates=\(clientFolder)"

                let info = try await fx.runChecked(["nbdinfo", uri])
                #expect(info.stdout.contains("67108864") && info.stdout.contains("is_read_only: true"), "\(info)")
                let copied = fx.target("tls.raw")
                try await fx.runChecked(["nbdcopy", uri, copied])
                try await fx.runChecked(["qemu-img", "compare", "-f", "raw", copied, "-F", "qcow2", top])
                let ours = fx.target("tls.qcow2")
                try requireSuccess(try await Pullback.copy(fx, [uri, ours, "--format", "qcow2"]))
                try await Qemu.expectIdentical(fx, ours, top, referenceFormat: "qcow2")
                let served = try await NBDInfo.map(uri, context: "base:allocation", using: fx)
                let plainSocket = fx.path("plain.sock")
                _ = try await ServeTests.serve(fx, images: [top], socket: plainSocket)
                let plain = try await NBDInfo.map(
                    "nbd+unix:///top.qcow2?socket=\(plainSocket)", context: "base:allocation", using: fx)
                #expect(served.map(\.range) == plain.map(\.range) && served.map(\.type) == plain.map(\.type))

                // Refused: no TLS at all, and TLS without a client certificate (a folder with only the CA).
                let plaintext = try await fx.run([
                    "nbdinfo", uris[0].replacingOccurrences(of: "nbds://", with: "nbd://"),
                ])
                #expect(!plaintext.succeeded, "\(plaintext)")
                let anonymous = try fx.makeDirectory("anonymous")
                try FileManager.default.copyItem(
                    atPath: "\(clientFolder)/ca-cert.pem", toPath: "\(anonymous)/ca-cert.pem")
                let noCertificate = try await fx.run(["nbdinfo", uris[0] + "?tls-certificates=\(anonymous)"])
                #expect(!noCertificate.succeeded, "a client without a certificate is refused: \(noCertificate)")
                let refusedCopy = fx.target("refused.raw")
                let ourPlaintext = try await Pullback.copy(
                    fx, [uris[0].replacingOccurrences(of: "nbds://", with: "nbd://"), refusedCopy])
                expectCleanFailure(ourPlaintext, mentioning: ["TLS"])
                expectNoCopyLeft(at: refusedCopy)
                #expect(server.isRunning, "the server stays up")
                try await fx.runChecked(["qemu-img", "compare", "-f", "raw", copied, "-F", "qcow2", top])

                // The same over a unix socket.
                let socket = fx.path("tls.sock")
                let unix = try await ServeTests.start(
                    fx, ["--image", top, "--socket", socket] + Self.tlsOptions(certificates), exports: 1)
                #expect(unix.uris == ["nbds+unix:///top.qcow2?socket=\(socket)"])
                let viaSocket = fx.target("socket.raw")
                try await fx.runChecked(["nbdcopy", unix.uris[0] + "&tls-certificates=\(clientFolder)", viaSocket])
                try await fx.runChecked(["cmp", viaSocket, copied])
                let plainUnix = try await fx.run(["nbdinfo", "nbd+unix:///top.qcow2?socket=\(socket)"])
                #expect(!plainUnix.succeeded, "\(plainUnix)")

                server.interrupt()
                #expect(try await server.waitForExit(timeout: .seconds(20)).succeeded)
            }
        }

        @Test(
            "before STARTTLS every option but ABORT is refused with TLS_REQD, EXPORT_NAME ends the connection; a second STARTTLS is invalid",
            .timeLimit(.minutes(2)))
        func startTLSRules() async throws {
            try await Fixture.run { fx in
                let (top, _) = try await ServeTests.makeImages(fx)
                let certificates = try await TLSCertificates.make(fx)
                let socket = fx.path("tls.sock")
                let (server, _) = try await ServeTests.start(
                    fx, ["--image", top, "--socket", socket] + Self.tlsOptions(certificates), exports: 1)
                let client = certificates.clientDirectory
                let script = """
                    import socket, ssl, struct
                    def connect():
                        s = socket.socket(socket.AF_UNIX); s.connect(\(String(reflecting: socket)))
                        assert len(s.recv(18)) == 18; s.sendall(struct.pack('>I', 3)); return s
                    def recvall(s, n):
                        data = b''
                        while len(data) < n:
                            chunk = s.recv(n - len(data)); assert chunk, 'connection ended'; data += chunk
                        return data
                    def option(s, code, data=b''):
                        s.sendall(struct.pack('>QII', 0x49484156454F5054, code, len(data)) + data)
                        reply = struct.unpack('>QIII', recvall(s, 20)); recvall(s, reply[3]); return reply[2]
                    name = b'top.qcow2'
                    go = struct.pack('>I', len(name)) + name + struct.pack('>H', 0)
                    s = connect()
                    for code, data in ((8, b''), (3, b''), (6, go), (7, go), (99, b'')):
                        assert option(s, code, data) == 0x80000005, ('TLS_REQD expected', code)
                    s.sendall(struct.pack('>QII', 0x49484156454F5054, 1, len(name)) + name)
                    assert s.recv(100) == b'', 'EXPORT_NAME before STARTTLS ends the connection'
                    s = connect()
                    assert option(s, 5, b'x') == 0x80000003, 'STARTTLS with data is invalid'
                    assert option(s, 5) == 1, 'STARTTLS acknowledged'
                    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); context.check_hostname = False
                    context.load_verify_locations('\(client)/ca-cert.pem')
                    context.load_cert_chain('\(client)/client-cert.pem', '\(client)/client-key.pem')
                    t = context.wrap_socket(s)
                    assert option(t, 5) == 0x80000003, 'a second STARTTLS is invalid'
                    assert option(t, 8) == 1, 'structured replies after TLS'
                    t.sendall(struct.pack('>QII', 0x49484156454F5054, 7, len(go)) + go)
                    while True:
                        reply = struct.unpack('>QIII', recvall(t, 20)); recvall(t, reply[3])
                        if reply[2] == 1: break
                        assert reply[2] == 3, reply
                    t.sendall(struct.pack('>IHHQQI', 0x25609513, 1, 0, 9, 0, 4096))  # DF: one data chunk
                    magic, flags, kind, cookie, length = struct.unpack('>IHHQI', recvall(t, 20))
                    assert magic == 0x668E33EF and kind == 1 and cookie == 9 and length == 8 + 4096, (kind, length)
                    offset = struct.unpack('>Q', recvall(t, 8))[0]
                    assert offset == 0 and recvall(t, 4096) == b'\\x11' * 4096
                    s = connect(); s.sendall(struct.pack('>QII', 0x49484156454F5054, 5, 0) + b'early bytes')
                    assert s.recv(100) == b'', 'bytes sent before the STARTTLS reply end the connection'
                    s = connect(); assert option(s, 5) == 1; s.sendall(b'not a TLS client hello' * 10); s.settimeout(20)
                    try:
                        while s.recv(4096): pass  # a TLS alert at most, then the end
                    except ConnectionResetError: pass
                    print('ok')
                    """
                let result = try await fx.run(["python3", "-c", script])
                #expect(result.succeeded && result.stdout == "ok\n", "\(result)")
                #expect(server.isRunning, "the server stays up")
                let copied = fx.target("after.raw")
                try await fx.runChecked([
                    "nbdcopy", "nbds+unix:///top.qcow2?socket=\(socket)&tls-certificates=\(client)", copied,
                ])
                try await fx.runChecked(["qemu-img", "compare", "-f", "raw", copied, "-F", "qcow2", top])
            }
        }

        @Test(
            "TLS files that are missing or do not fit are refused in one line before listening", .timeLimit(.minutes(1))
        )
        func badTLSFiles() async throws {
            try await Fixture.run { fx in
                let (top, _) = try await ServeTests.makeImages(fx)
                let certificates = try await TLSCertificates.make(fx)
                let server = certificates.serverDirectory
                let client = certificates.clientDirectory
                // Files that cannot be used exit 1; options that do not go together are usage errors (64).
                let cases: [([String], Int32, [String])] = [
                    (
                        ["--tls-cert", "\(server)/missing.pem", "--tls-key", "\(server)/server-key.pem"], 1,
                        ["missing.pem"]
                    ),
                    (["--tls-cert", "\(server)/server-cert.pem", "--tls-key", top], 1, [top]),
                    (["--tls-cert", "\(server)/server-cert.pem", "--tls-key", "\(client)/client-key.pem"], 1, ["key"]),
                    (["--tls-cert", "\(server)/server-cert.pem"], 64, ["--tls-key"]),
                    (["--tls-ca", "\(server)/ca-cert.pem"], 64, ["--tls-cert"]),
                ]
                for (options, exitCode, words) in cases {
                    let socket = fx.path("bad.sock")
                    let result = try await fx.run(
                        [try Pullback.binaryPath(), "serve", "--image", top, "--socket", socket] + options)
                    if exitCode == 64 {
                        let first = result.stderrLines.first ?? ""
                        #expect(result.exitCode == 64 && words.allSatisfy(first.contains), "\(result)")
                    } else {
                        expectCleanFailure(result, exitCode: exitCode, mentioning: words)
                    }
                    #expect(!FileManager.default.fileExists(atPath: socket), "\(options)")
                }
            }
        }
    }
}
