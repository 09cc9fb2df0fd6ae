import FileIO
import NIOSSL

/// The TLS a server requires of every client: its certificate and key, and, when a CA is given, a client
/// certificate signed by that CA (as qemu-nbd's `tls-creds-x509` with `verify-peer`).
///
/// With TLS, a client must send `NBD_OPT_STARTTLS` before any other option; every other option gets
/// `NBD_REP_ERR_TLS_REQD` until then, as the protocol's "forced TLS" mode says.
public struct ServerTLS: Sendable {
    let context: NIOSSLContext

    /// Reads and checks the PEM files now, so that a wrong path, a key others can read, or a key that does not match
    /// its certificate stops the server before it listens.
    public init(certificate: String, key: String, clientCA: String? = nil) throws(ServerError) {
        if let problem = PrivateKeyFile.problem(at: key) { throw ServerError(.tlsFiles, problem) }
        let chain: [NIOSSLCertificate]
        let privateKey: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificate)
        } catch {
            throw ServerError(
                .tlsFiles, "cannot read the certificate \(certificate): \(error); give a PEM file", cause: error)
        }
        guard !chain.isEmpty else {
            throw ServerError(.tlsFiles, "\(certificate) holds no certificate; give a PEM file")
        }
        do {
            privateKey = try NIOSSLPrivateKey(file: key, format: .pem)
        } catch {
            throw ServerError(
                .tlsFiles, "cannot read the private key \(key): \(error); give an unencrypted PEM key", cause: error)
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(privateKey))
        configuration.minimumTLSVersion = .tlsv12
        if let clientCA {
            let roots: [NIOSSLCertificate]
            do {
                roots = try NIOSSLCertificate.fromPEMFile(clientCA)
            } catch {
                throw ServerError(
                    .tlsFiles, "cannot read the CA certificate \(clientCA): \(error); give a PEM file", cause: error)
            }
            guard !roots.isEmpty else {
                throw ServerError(.tlsFiles, "\(clientCA) holds no certificate; give a PEM file")
            }
            configuration.trustRoots = .certificates(roots)
            // Clients have no host name to check; their certificate must be signed by the CA.
            configuration.certificateVerification = .noHostnameVerification
        }
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw ServerError(
                .tlsFiles, "cannot use \(certificate) with \(key): \(error); is the key the certificate's?",
                cause: error)
        }
    }
}
