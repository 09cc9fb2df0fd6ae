import NIOSSL

/// The client's TLS setup from a certificate folder as libnbd and qemu lay it out: `ca-cert.pem` (the CA the server's
/// certificate must chain to), and, when present, `client-cert.pem` with `client-key.pem`.
public enum ProbeTLS {
    /// The context for a probe over TLS with the certificates in `folder`; nil `folder`: the system's trusted CAs.
    public static func context(certificates folder: String?) throws(ProbeError) -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        do {
            if let folder {
                configuration.trustRoots = .file(folder + "/ca-cert.pem")
                let certificate = folder + "/client-cert.pem"
                if let chain = try? NIOSSLCertificate.fromPEMFile(certificate), !chain.isEmpty {
                    configuration.certificateChain = chain.map { .certificate($0) }
                    configuration.privateKey = .privateKey(
                        try NIOSSLPrivateKey(file: folder + "/client-key.pem", format: .pem))
                }
            }
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw ProbeError(.tls, "cannot set up TLS from \(folder ?? "the system's CAs"): \(error)", cause: error)
        }
    }
}
