import ArgumentParser
import FileIO
import Foundation

/// `--tls-certificates DIR`: the client's TLS folder for an `nbds://` source, added to its URI as `tls-certificates=`;
/// shared by the commands that read an NBD export they are given (`copy`, `digest`).
struct SourceTLSOption: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "With nbds://: the client's TLS folder (ca-cert.pem, client-cert.pem, client-key.pem), as tls-certificates=.",
            valueName: "dir"), completion: .directory)
    var tlsCertificates: String?

    /// Refuses the option for a source that is not `nbds://` or already names a certificate folder.
    func validate(source: String) throws {
        guard tlsCertificates != nil else { return }
        guard source.hasPrefix("nbds://") || source.hasPrefix("nbds+unix://") else {
            throw ValidationError("--tls-certificates needs an nbds:// or nbds+unix:// source")
        }
        guard !source.contains("tls-certificates=") else {
            throw ValidationError("give the certificate folder once: in the URI or with --tls-certificates")
        }
    }

    /// `source` with the certificate folder, when given, added to its query.
    func uri(for source: String) -> String {
        guard let tlsCertificates else { return source }
        let query = tlsCertificates.addingPercentEncoding(
            withAllowedCharacters: .urlQueryAllowed.subtracting(["&", "+", "="]))
        return source + (source.contains("?") ? "&" : "?") + "tls-certificates=" + (query ?? tlsCertificates)
    }

    /// Why a secret libnbd will read for `source` may not be used, or nil: the client key of the certificate folder
    /// (given as the option or as `tls-certificates=`) and a `tls-psk-file=` must each be their owner's only, checked
    /// before anything is made.
    func secretProblem(source: String) -> String? {
        let query = URLComponents(string: source)?.queryItems ?? []
        func value(_ name: String) -> String? { query.last { $0.name == name }?.value }
        var files: [String] = []
        if let folder = tlsCertificates ?? value("tls-certificates") { files.append(folder + "/client-key.pem") }
        if let pskFile = value("tls-psk-file") { files.append(pskFile) }
        return files.lazy.compactMap(PrivateKeyFile.problem(at:)).first
    }
}
