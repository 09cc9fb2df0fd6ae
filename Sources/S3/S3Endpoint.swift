/// Where requests go: the store's scheme, host and port, and how a bucket is addressed.
public struct S3Endpoint: Sendable, Hashable, CustomStringConvertible {
    /// `http` or `https`.
    public var scheme: String
    /// The host name or address, without brackets for IPv6.
    public var host: String
    /// The TCP port, or nil for the scheme's default.
    public var port: Int?
    /// True: `https://host/BUCKET/KEY` (other stores); false: `https://BUCKET.host/KEY` (AWS).
    public var pathStyle: Bool

    /// An endpoint from its parts.
    public init(scheme: String, host: String, port: Int?, pathStyle: Bool) {
        self.scheme = scheme
        self.host = host
        self.port = port
        self.pathStyle = pathStyle
    }

    /// `scheme://host[:port]`.
    public var description: String { "\(scheme)://\(authority)" }

    /// `host[:port]` as in a URL and in the Host header (IPv6 in brackets, the scheme's default port left out).
    var authority: String {
        let bracketed = host.contains(":") ? "[\(host)]" : host
        let isDefaultPort = (scheme == "https" && port == 443) || (scheme == "http" && port == 80)
        guard let port, !isDefaultPort else { return bracketed }
        return "\(bracketed):\(port)"
    }

    /// True for `localhost`, 127.0.0.0/8 and `::1`: the only hosts plain http is allowed to without `allowHTTP`.
    var isLoopback: Bool {
        let lowered = host.lowercased()
        if lowered == "localhost" || lowered == "::1" { return true }
        let octets = lowered.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }
}
