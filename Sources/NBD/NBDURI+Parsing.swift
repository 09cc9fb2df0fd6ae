import UntrustedText

extension NBDURI {
    /// Reads `text` as libnbd would, refusing with a one-line ``NBDError/Code-swift.struct/invalidArgument`` what
    /// libnbd would refuse or read differently than meant: an unknown scheme, a character that must be
    /// percent-encoded, a bad `%` escape or port, a unix socket without `socket=` (or with a host), `socket=` on
    /// another transport, a parameter given twice or one libnbd does not read.
    public init(parsing text: String) throws(NBDError) {
        func refused(_ reason: String) -> NBDError {
            NBDError(.invalidArgument, "cannot read the NBD URI \(UntrustedText.quoted(text)): \(reason)")
        }
        guard let separator = text.range(of: "://"), NBDURI.schemes.contains(String(text[..<separator.lowerBound]))
        else {
            throw refused("it must start with " + NBDURI.schemes.map { $0 + "://" }.joined(separator: ", "))
        }
        if let raw = text.first(where: { !NBDURIText.isAllowedRaw($0) }) {
            throw refused("\(UntrustedText.quoted(String(raw))) must be percent-encoded")
        }
        let scheme = text[..<separator.lowerBound]
        let rest = text[separator.upperBound...]
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        let queryStart = rest[authorityEnd...].firstIndex(of: "?")
        let path = rest[authorityEnd..<(queryStart ?? rest.endIndex)]
        var parameters = try Self.parameters(queryStart.map { rest[rest.index(after: $0)...] } ?? "", refused)
        let (user, host, port) = try Self.authority(rest[..<authorityEnd], refused)
        guard let exportName = NBDURIText.decoded(path.dropFirst()) else {
            throw refused("the export name has a bad %-escape or a NUL")
        }
        let socket = parameters.removeValue(forKey: "socket")
        let transport: Transport
        if scheme.hasSuffix("+unix") {
            guard let socket else { throw refused("\(scheme):// needs socket=PATH") }
            guard host.isEmpty, port == nil else {
                throw refused("\(scheme):// takes no host or port; the socket is socket=PATH")
            }
            transport = .unix(socket: socket)
        } else if socket != nil {
            throw refused("socket= is for nbd+unix:// and nbds+unix://")
        } else if scheme.hasSuffix("+vsock") {
            guard let cid = UInt32(host) else { throw refused("\(scheme):// needs a numeric context id as host") }
            transport = .vsock(cid: cid, port: port)
        } else {
            guard !host.isEmpty else { throw refused("\(scheme):// needs a host") }
            transport = .tcp(host: host, port: port)
        }
        self.init(
            transport, requiresTLS: scheme.hasPrefix("nbds"), exportName: exportName, user: user,
            tlsCertificates: parameters["tls-certificates"], tlsPSKFile: parameters["tls-psk-file"],
            tlsUsername: parameters["tls-username"], tlsHostname: parameters["tls-hostname"])
    }

    /// The names of the query parameters libnbd reads.
    static let parameterNames: Set<String> = [
        "socket", "tls-certificates", "tls-psk-file", "tls-username", "tls-hostname",
    ]

    /// The decoded `name=value` pairs of `query`, each name known and given once.
    private static func parameters(
        _ query: Substring, _ refused: (String) -> NBDError
    ) throws(NBDError) -> [String: String] {
        var parameters: [String: String] = [:]
        for item in query.split(separator: "&", omittingEmptySubsequences: true) {
            guard let equals = item.firstIndex(of: "="), let name = NBDURIText.decoded(item[..<equals]),
                let value = NBDURIText.decoded(item[item.index(after: equals)...])
            else {
                throw refused("\(UntrustedText.quoted(String(item))) is not NAME=VALUE with good %-escapes")
            }
            guard parameterNames.contains(name) else {
                throw refused(
                    "libnbd does not read \(UntrustedText.quoted(name))=; it reads "
                        + parameterNames.sorted().map { $0 + "=" }.joined(separator: ", "))
            }
            guard parameters.updateValue(value, forKey: name) == nil else { throw refused("\(name)= is given twice") }
        }
        return parameters
    }

    /// The user, host (IPv6 without its brackets) and port of `authority`.
    private static func authority(
        _ authority: Substring, _ refused: (String) -> NBDError
    ) throws(NBDError) -> (user: String?, host: String, port: Int?) {
        var hostAndPort = authority
        var user: String?
        if let at = authority.lastIndex(of: "@") {
            guard let decoded = NBDURIText.decoded(authority[..<at]) else {
                throw refused("the user name has a bad %-escape")
            }
            user = decoded
            hostAndPort = authority[authority.index(after: at)...]
        }
        var host = hostAndPort
        var portText: Substring?
        if hostAndPort.hasPrefix("[") {
            guard let close = hostAndPort.firstIndex(of: "]") else { throw refused("an IPv6 address lacks its ]") }
            host = hostAndPort[hostAndPort.index(after: hostAndPort.startIndex)..<close]
            let after = hostAndPort[hostAndPort.index(after: close)...]
            guard after.isEmpty || after.hasPrefix(":") else { throw refused("only :PORT may follow ]") }
            portText = after.isEmpty ? nil : after.dropFirst()
        } else if let colon = hostAndPort.lastIndex(of: ":") {
            host = hostAndPort[..<colon]
            portText = hostAndPort[hostAndPort.index(after: colon)...]
        }
        guard !host.contains("%"), !host.contains(":") || hostAndPort.hasPrefix("[") else {
            throw refused("the host \(UntrustedText.quoted(String(host))) is not a name or an address")
        }
        guard let portText else { return (user, String(host), nil) }
        guard portText.allSatisfy({ $0.isASCII && $0.isNumber }), let port = Int(portText), (1...65535).contains(port)
        else {
            throw refused("the port must be a number from 1 to 65535")
        }
        return (user, String(host), port)
    }
}
