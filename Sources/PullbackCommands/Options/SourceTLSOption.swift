import ArgumentParser
import FileIO
import Foundation
import NBD

/// `--tls-certificates DIR`: the client's TLS folder for an `nbds://` source, added to its URI as `tls-certificates=`;
/// shared by the commands that read an NBD export they are given (`copy`, `digest`).
struct SourceTLSOption: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "With nbds://: the client's TLS folder (ca-cert.pem, client-cert.pem, client-key.pem), as tls-certificates=.",
            valueName: "dir"), completion: .directory)
    var tlsCertificates: String?

    /// Refuses the option for a source that is not an NBD URI libnbd reads, not `nbds://` or `nbds+unix://`, or
    /// already names a certificate folder.
    func validate(source: String) throws(ValidationError) {
        guard tlsCertificates != nil else { return }
        let uri: NBDURI
        do { uri = try NBDURI(parsing: source) } catch { throw ValidationError(error.message) }
        guard uri.requiresTLS, uri.scheme != "nbds+vsock" else {
            throw ValidationError("--tls-certificates needs an nbds:// or nbds+unix:// source")
        }
        guard uri.tlsCertificates == nil else {
            throw ValidationError("give the certificate folder once: in the URI or with --tls-certificates")
        }
    }

    /// `source` with the certificate folder, when given, added to its query (percent-encoded, so that any folder
    /// name reaches libnbd as it is).
    func uri(for source: String) -> String {
        guard let tlsCertificates, var uri = try? NBDURI(parsing: source) else { return source }
        uri.tlsCertificates = tlsCertificates
        return uri.description
    }

    /// Why a secret libnbd will read for `source` may not be used, or nil: the client key of the certificate folder
    /// (given as the option or as `tls-certificates=`) and a `tls-psk-file=` must each be their owner's only, checked
    /// before anything is made.
    func secretProblem(source: String) -> String? {
        let uri = try? NBDURI(parsing: source)
        // A URI NBDURI refuses may still reach libnbd (one with a parameter libnbd ignores): its secrets are checked
        // as URLComponents reads them.
        let query = uri == nil ? URLComponents(string: source)?.queryItems ?? [] : []
        func value(_ name: String) -> String? { query.last { $0.name == name }?.value }
        var files: [String] = []
        if let folder = tlsCertificates ?? uri?.tlsCertificates ?? value("tls-certificates") {
            files.append(folder + "/client-key.pem")
        }
        if let pskFile = uri?.tlsPSKFile ?? value("tls-psk-file") { files.append(pskFile) }
        return files.lazy.compactMap(PrivateKeyFile.problem(at:)).first
    }
}
