import Libvirt
import NBD

/// Where QEMU exports a backup's disks over NBD: a unix socket on this host, or a TCP port of the hypervisor for a
/// backup host elsewhere. Named in the backup XML, in the job record (to recognise the job later) and in the URIs
/// the engine reads from.
enum ExportAddress: Sendable, Equatable {
    case unixSocket(String)
    /// `tls` says whether QEMU requires TLS; `certificates` is the client's folder for libnbd (`ca-cert.pem`,
    /// `client-cert.pem`, `client-key.pem`).
    case tcp(host: String, port: Int, certificates: String?)

    /// The `<server>` element of a pull backup's XML.
    var serverXML: String {
        switch self {
        case .unixSocket(let path):
            "<server transport='unix' socket='\(BackupXML.escape(path))'/>"
        case .tcp(let host, let port, let certificates):
            "<server transport='tcp' tls='\(certificates == nil ? "no" : "yes")' name='\(BackupXML.escape(host))' "
                + "port='\(port)'/>"
        }
    }

    /// The NBD URI of `target`'s export, each part percent-encoded: a socket path or a target may hold any
    /// character.
    func uri(of target: String) -> String {
        switch self {
        case .unixSocket(let path):
            NBDURI(.unix(socket: path), exportName: target).description
        case .tcp(let host, let port, let certificates):
            NBDURI(
                .tcp(host: host, port: port), requiresTLS: certificates != nil, exportName: target,
                tlsCertificates: certificates
            ).description
        }
    }

    /// Whether `backupXML` (libvirt's description of a running job) exports on this address: the job is the one
    /// that exported here, since a socket path is unique to its run and a port is bound by one job at a time.
    func isNamed(in backupXML: String) -> Bool {
        switch self {
        case .unixSocket(let path):
            return backupXML.contains("'\(path)'") || backupXML.contains("\"\(path)\"")
        case .tcp(let host, let port, _):
            let quoted = { (text: String) in ["'\(text)'", "\"\(text)\""] }
            return quoted(host).contains(where: backupXML.contains)
                && quoted(String(port)).contains { backupXML.contains("port=" + $0) }
        }
    }
}

extension LibvirtError {
    /// Whether QEMU could not bind the export's TCP port because something else holds it.
    var isAddressInUse: Bool {
        message.contains("Address already in use")
    }
}
