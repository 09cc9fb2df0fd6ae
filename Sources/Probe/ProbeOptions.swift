import NBD
import NIOSSL

/// What `pullback probe` is asked.
public struct ProbeOptions: Sendable {
    /// The URI as given, for the report.
    public var uriText: String
    /// The server and export.
    public var uri: NBDURI
    /// Whether the export may be written (it is a scratch export).
    public var write: Bool
    /// The connections opened at once by the checks that compare connections.
    public var connections: Int
    /// Names or groups of the checks to run (`read`, `read.past-end`); empty: all.
    public var only: [String]
    /// How long any read from the server may wait: no check waits longer for a byte.
    public var stallTimeout: Duration
    /// The client's TLS setup for `nbds` URIs: the CA to trust and the client's certificate, from the URI's
    /// `tls-certificates=` folder.
    public var tls: NIOSSLContext?

    /// A probe of `uri`.
    public init(
        uriText: String, uri: NBDURI, write: Bool = false, connections: Int = 4, only: [String] = [],
        stallTimeout: Duration = .seconds(10), tls: NIOSSLContext? = nil
    ) {
        self.uriText = uriText
        self.uri = uri
        self.write = write
        self.connections = connections
        self.only = only
        self.stallTimeout = stallTimeout
        self.tls = tls
    }

    /// Whether check `name` is chosen by ``only``.
    func chooses(_ name: String) -> Bool {
        only.isEmpty || only.contains { name == $0 || name.hasPrefix($0 + ".") }
    }
}
