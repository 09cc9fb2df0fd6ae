import Libvirt

/// Which libvirt URIs a shell completion may open. A TAB must neither prompt nor run a program: libvirt's `ssh`,
/// `libssh` and `libssh2` transports may ask for a password or a host key on the terminal and start `ssh`, `ext`
/// runs any command the URI names, and a name without a scheme may be an alias (`uri_aliases`) for any of them.
/// Only the local driver and the `unix`, `tcp` and `tls` transports are allowed.
public enum CompletionConnection {
    /// Whether a completion may connect to `uri` (to ``LibvirtConnection/defaultURI`` when nil).
    public static func mayConnect(to uri: String?) -> Bool {
        let uri = uri ?? LibvirtConnection.defaultURI
        guard let colon = uri.firstIndex(of: ":"), uri[colon...].hasPrefix("://") else { return false }
        let scheme = uri[..<colon].lowercased()
        guard let plus = scheme.firstIndex(of: "+") else { return !scheme.isEmpty }
        return ["unix", "tcp", "tls"].contains(scheme[scheme.index(after: plus)...])
    }
}
