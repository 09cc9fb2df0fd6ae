internal import CLibNBD
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Checks the certificate of a TLS server reached over a unix socket, which libnbd itself does not.
///
/// libnbd 1.14 hands GnuTLS a name to verify the server's certificate against only when it has a host name, that
/// is over TCP (`nbd_connect_tcp`); over a unix socket it sets up no verification at all, so a certificate from any
/// CA, for any name, is accepted, and `nbd_set_tls_verify_peer` changes nothing (it is on by default). libnbd 1.22
/// added `nbd_set_tls_hostname`, and without it verifies nothing over a unix socket either.
///
/// So before libnbd connects, this opens the socket itself, negotiates NBD up to `NBD_OPT_STARTTLS`, and makes a TLS
/// handshake with the credentials libnbd will use (the same folder, or the system's CAs), in which GnuTLS checks that
/// the certificate chains to the CA and names ``hostname``: the URI's `tls-hostname=` (the parameter libnbd 1.22
/// reads), else `localhost`, the one name a server on this host can be expected to hold. A pre-shared key
/// (`tls-psk-file=`) authenticates both sides by itself and needs no check.
///
/// The check is its own connection, made just before libnbd's: a server that exits after its first client
/// (qemu-nbd without `--persistent`) is gone by the time libnbd connects.
struct UnixSocketPeerCheck: Sendable {
    let socketPath: String
    /// The client's certificate folder, as libnbd finds it; nil: the system's CAs.
    let folder: String?
    let hostname: String

    /// The check an `nbds+unix://` URI with x509 certificates needs, or nil for any other URI. A URI of that
    /// scheme that cannot be read is refused rather than connected to unchecked.
    init?(uri: String) throws(NBDError) {
        guard uri.lowercased().hasPrefix("nbds+unix:") else { return nil }
        let parsed = try NBDURI(parsing: uri)
        // A pre-shared key authenticates both sides by itself.
        guard parsed.tlsPSKFile == nil, case .unix(let socketPath) = parsed.transport else { return nil }
        self.socketPath = socketPath
        self.hostname = parsed.tlsHostname ?? "localhost"
        self.folder = Self.certificateFolder(given: parsed.tlsCertificates)
    }

    /// The folder libnbd takes its CA from: the one given, else `~/.pki/libnbd` or `~/.config/pki/libnbd` (root:
    /// `/etc/pki/libnbd`); a folder without `ca-cert.pem` does not count, and libnbd then trusts the system's CAs.
    private static func certificateFolder(given: String?) -> String? {
        let home = ProcessInfo.processInfo.environment["HOME"]
        let candidates: [String]
        if let given {
            candidates = [given]
        } else if geteuid() != 0, let home {
            candidates = ["\(home)/.pki/libnbd", "\(home)/.config/pki/libnbd"]
        } else {
            candidates = geteuid() == 0 ? ["/etc/pki/libnbd"] : []
        }
        return candidates.first { access("\($0)/ca-cert.pem", R_OK) == 0 }
    }

    /// Connects, starts TLS and lets GnuTLS verify the server; throws ``NBDError/Code-swift.struct/untrustedServer``
    /// with what is wrong with the certificate. A server that does not agree to TLS is left for libnbd to refuse.
    /// Blocks the calling thread: call it on the handle's thread, before `nbd_aio_connect_uri`.
    ///
    /// The corresponding C functions are `gnutls_session_set_verify_cert` and `gnutls_handshake`.
    func verify(timeout: Duration?) throws(NBDError) {
        let socket = try PeerSocket(path: socketPath, timeout: timeout)
        defer { socket.close() }
        guard try socket.startTLS() else { return }
        try handshake(on: socket.descriptor, timeout: timeout)
    }

    private func handshake(on descriptor: Int32, timeout: Duration?) throws(NBDError) {
        var credentials: gnutls_certificate_credentials_t?
        guard gnutls_certificate_allocate_credentials(&credentials) == GNUTLS_E_SUCCESS, let credentials else {
            throw failure("cannot allocate TLS credentials")
        }
        defer { gnutls_certificate_free_credentials(credentials) }
        try load(into: credentials)
        var session: gnutls_session_t?
        guard gnutls_init(&session, UInt32(GNUTLS_CLIENT)) == GNUTLS_E_SUCCESS, let session else {
            throw failure("cannot start a TLS session")
        }
        defer { gnutls_deinit(session) }
        guard gnutls_set_default_priority(session) == GNUTLS_E_SUCCESS,
            gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, UnsafeMutableRawPointer(credentials))
                == GNUTLS_E_SUCCESS,
            gnutls_server_name_set(session, GNUTLS_NAME_DNS, hostname, hostname.utf8.count) == GNUTLS_E_SUCCESS
        else { throw failure("cannot set up the TLS session") }
        gnutls_session_set_verify_cert(session, hostname, 0)
        gnutls_transport_set_int2(session, descriptor, descriptor)
        if let timeout {
            gnutls_handshake_set_timeout(session, UInt32(clamping: timeout.components.seconds * 1000))
        }
        var result: Int32
        repeat { result = gnutls_handshake(session) } while result == GNUTLS_E_INTERRUPTED
        if result == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR {
            throw failure(
                code: .untrustedServer,
                "the server's certificate is refused: " + reasons(gnutls_session_get_verify_cert_status(session)))
        }
        guard result == GNUTLS_E_SUCCESS else {
            throw failure("the TLS handshake failed: \(String(cString: gnutls_strerror(result)))")
        }
        _ = gnutls_bye(session, GNUTLS_SHUT_WR)
    }

    /// The CA (and revocation list) to verify against and the client's own certificate, as libnbd loads them.
    private func load(into credentials: gnutls_certificate_credentials_t) throws(NBDError) {
        guard let folder else {
            guard gnutls_certificate_set_x509_system_trust(credentials) >= 0 else {
                throw failure("cannot load the system's CA certificates")
            }
            return
        }
        let (ca, crl) = ("\(folder)/ca-cert.pem", "\(folder)/ca-crl.pem")
        let (certificate, key) = ("\(folder)/client-cert.pem", "\(folder)/client-key.pem")
        let loaded = gnutls_certificate_set_x509_trust_file(credentials, ca, GNUTLS_X509_FMT_PEM)
        guard loaded >= 0 else { throw failure("cannot load \(ca): \(String(cString: gnutls_strerror(loaded)))") }
        if access(certificate, R_OK) == 0, access(key, R_OK) == 0 {
            let result = gnutls_certificate_set_x509_key_file(credentials, certificate, key, GNUTLS_X509_FMT_PEM)
            guard result >= 0 else {
                throw failure("cannot load \(certificate) with \(key): \(String(cString: gnutls_strerror(result)))")
            }
        }
        if access(crl, R_OK) == 0 {
            let result = gnutls_certificate_set_x509_crl_file(credentials, crl, GNUTLS_X509_FMT_PEM)
            guard result >= 0 else { throw failure("cannot load \(crl): \(String(cString: gnutls_strerror(result)))") }
        }
    }

    /// Why GnuTLS refused the certificate, in words; the certificate's own text is never quoted.
    private func reasons(_ status: UInt32) -> String {
        let trust = folder.map { "the CA of \($0)" } ?? "the system's CAs"
        let known: [(gnutls_certificate_status_t, String)] = [
            (GNUTLS_CERT_SIGNER_NOT_FOUND, "it is not signed by \(trust)"),
            (
                GNUTLS_CERT_UNEXPECTED_OWNER,
                "it is not made out to \(hostname) (give tls-hostname=NAME for another name)"
            ),
            (GNUTLS_CERT_EXPIRED, "it has expired"),
            (GNUTLS_CERT_NOT_ACTIVATED, "it is not valid yet"),
            (GNUTLS_CERT_REVOKED, "it is revoked"),
            (GNUTLS_CERT_SIGNER_NOT_CA, "its signer is not a CA"),
            (GNUTLS_CERT_INSECURE_ALGORITHM, "it is signed with an insecure algorithm"),
        ]
        let found = known.filter { status & $0.0.rawValue != 0 }.map(\.1)
        return found.isEmpty ? "it does not verify against \(trust)" : found.joined(separator: ", ")
    }

    private func failure(code: NBDError.Code = .connect, _ reason: String) -> NBDError {
        NBDError(code, "cannot trust the NBD server at \(socketPath): \(reason)")
    }
}

/// The socket of a check, and the NBD negotiation up to TLS. The bytes are the protocol's fixed newstyle handshake.
private struct PeerSocket {
    let descriptor: Int32
    let path: String

    init(path: String, timeout: Duration?) throws(NBDError) {
        self.path = path
        descriptor = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw Self.systemError("cannot create a socket", path: path) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.utf8.count < capacity else {
            Glibc.close(descriptor)
            throw NBDError(.invalidArgument, "the socket path \(path) is longer than \(capacity - 1) bytes")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { bytes in
            bytes.copyBytes(from: path.utf8)
        }
        if let timeout {
            // Each read and write waits at most this long, as libnbd's handshake does under the stall timeout.
            var limit = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: 0)
            _ = setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
            _ = setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else {
            let error = Self.systemError("cannot connect to", path: path)
            Glibc.close(descriptor)
            throw error
        }
    }

    func close() { Glibc.close(descriptor) }

    /// Reads the server's greeting and asks for TLS; true once the server agreed, false when it is not a newstyle
    /// server or refused (libnbd then fails the connection with the server's answer).
    func startTLS() throws(NBDError) -> Bool {
        let greeting = try receive(18)
        guard greeting.prefix(16).elementsEqual(Array("NBDMAGICIHAVEOPT".utf8)) else { return false }
        let serverFlags = UInt16(greeting[16]) << 8 | UInt16(greeting[17])
        let clientFlags = UInt32(serverFlags & 0b11)  // fixed newstyle, no zeroes: as offered
        var request = Self.bigEndian(clientFlags)
        request += Array("IHAVEOPT".utf8) + Self.bigEndian(UInt32(5)) + Self.bigEndian(UInt32(0))  // NBD_OPT_STARTTLS
        try send(request)
        let reply = try receive(20)
        let magic: [UInt8] = [0x00, 0x03, 0xe8, 0x89, 0x04, 0x55, 0x65, 0xa9]
        guard reply.prefix(8).elementsEqual(magic) else { return false }
        let type = reply[12..<16].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        return type == 1  // NBD_REP_ACK
    }

    private func send(_ bytes: [UInt8]) throws(NBDError) {
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, 0) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { throw Self.systemError("cannot write to", path: path) }
            sent += count
        }
    }

    private func receive(_ count: Int) throws(NBDError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var received = 0
        while received < count {
            let got = bytes[received...].withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if got < 0, errno == EINTR { continue }
            if got == 0 {
                throw NBDError(
                    .connect, "cannot connect to \(path): the server ended the connection during the handshake")
            }
            guard got > 0 else { throw Self.systemError("cannot read from", path: path) }
            received += got
        }
        return bytes
    }

    private static func bigEndian(_ value: UInt32) -> [UInt8] {
        withUnsafeBytes(of: value.bigEndian) { Array($0) }
    }

    private static func systemError(_ what: String, path: String) -> NBDError {
        let code = errno
        if code == EAGAIN || code == EWOULDBLOCK {
            return NBDError(.stalled, "no answer from the NBD server at \(path) during the handshake", errno: code)
        }
        return NBDError(.connect, "\(what) \(path): \(String(cString: strerror(code)))", errno: code)
    }
}
