import UntrustedText

/// An NBD URI as libnbd's `nbd_connect_uri` reads it: a scheme, where the server is, the export name and the
/// parameters libnbd knows, parsed from text and built back with every part percent-encoded, so that a socket path
/// or an export name holding a space, `?`, `&` or `%` reaches libnbd unchanged.
///
/// The format is the NBD project's URI specification (`doc/uri.md`): the export name is the path without its
/// leading `/`, percent-decoded; the query's values are percent-decoded too, and `+` stays a plus.
public struct NBDURI: Sendable, Hashable, CustomStringConvertible {
    /// How the client reaches the server.
    public enum Transport: Sendable, Hashable {
        /// TCP to `host` (a name, an IPv4 address or an IPv6 address without brackets) at `port`, 10809 when nil.
        case tcp(host: String, port: Int?)
        /// A unix socket at `socket`, the URI's `socket=`.
        case unix(socket: String)
        /// `AF_VSOCK` to the context id `cid` (2: the host) at `port`, 10809 when nil.
        case vsock(cid: UInt32, port: Int?)
    }

    /// Where the server is.
    public var transport: Transport
    /// Whether TLS is required (`nbds` schemes) rather than left to the server (`nbd` schemes).
    public var requiresTLS: Bool
    /// The export's name; empty for the server's default export.
    public var exportName: String
    /// The user name before `@` in the authority, which libnbd uses for TLS with a pre-shared key.
    public var user: String?
    /// `tls-certificates=`: the client's certificate folder.
    public var tlsCertificates: String?
    /// `tls-psk-file=`: the pre-shared key file.
    public var tlsPSKFile: String?
    /// `tls-username=`: the user name for the pre-shared key (newer libnbd; older ones read ``user``).
    public var tlsUsername: String?
    /// `tls-hostname=`: the name the server's certificate must hold.
    public var tlsHostname: String?

    /// Creates a URI from its parts.
    public init(
        _ transport: Transport, requiresTLS: Bool = false, exportName: String = "", user: String? = nil,
        tlsCertificates: String? = nil, tlsPSKFile: String? = nil, tlsUsername: String? = nil,
        tlsHostname: String? = nil
    ) {
        self.transport = transport
        self.requiresTLS = requiresTLS
        self.exportName = exportName
        self.user = user
        self.tlsCertificates = tlsCertificates
        self.tlsPSKFile = tlsPSKFile
        self.tlsUsername = tlsUsername
        self.tlsHostname = tlsHostname
    }

    /// The schemes libnbd reads, each one of ``scheme``'s values.
    public static let schemes = ["nbd", "nbds", "nbd+unix", "nbds+unix", "nbd+vsock", "nbds+vsock"]

    /// The URI's scheme: `nbd` or `nbds`, with `+unix` or `+vsock` for those transports.
    public var scheme: String {
        let base = requiresTLS ? "nbds" : "nbd"
        switch transport {
        case .tcp: return base
        case .unix: return base + "+unix"
        case .vsock: return base + "+vsock"
        }
    }

    /// The URI as text, every part percent-encoded where it must be.
    public var description: String {
        var authority = user.map { NBDURIText.encoded($0, keeping: NBDURIText.unreserved) + "@" } ?? ""
        var query: [(String, String?)] = []
        switch transport {
        case .tcp(let host, let port):
            authority += host.contains(":") ? "[\(host)]" : host
            if let port { authority += ":\(port)" }
        case .unix(let socket):
            query.append(("socket", socket))
        case .vsock(let cid, let port):
            authority += "\(cid)"
            if let port { authority += ":\(port)" }
        }
        query += [
            ("tls-certificates", tlsCertificates), ("tls-psk-file", tlsPSKFile), ("tls-username", tlsUsername),
            ("tls-hostname", tlsHostname),
        ]
        let parameters = query.compactMap { name, value in
            value.map { name + "=" + NBDURIText.encoded($0, keeping: NBDURIText.queryValue) }
        }
        let path = "/" + NBDURIText.encoded(exportName, keeping: NBDURIText.path)
        return scheme + "://" + authority + path + (parameters.isEmpty ? "" : "?" + parameters.joined(separator: "&"))
    }
}
