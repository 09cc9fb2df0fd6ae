import NBDProtocol

/// How much a server gives its clients: reply memory, connections and time. Whatever a client sends, it holds no
/// more than these allow, so a client that asks and never reads its replies, or stalls in the handshake, cannot
/// take the server's memory or descriptors from the others.
public struct ServerLimits: Sendable {
    /// The bytes of replies one connection may hold, from the moment its request is taken until the last byte of
    /// the reply has been written to the socket; beyond that, its requests are not read. Raised to
    /// ``largestReply`` when smaller, so that any request can be answered.
    public var replyBytesPerConnection: Int
    /// The bytes of replies all connections together may hold; a connection that finds them taken waits, first come
    /// first served, for replies of others to be written. Raised to ``replyBytesPerConnection`` when smaller.
    public var replyBytes: Int
    /// The connections served at once; one more is closed as soon as it is accepted.
    public var maximumConnections: Int
    /// How long a client may take from connecting to the end of its handshake (its export chosen) before it is
    /// dropped; nil: no limit.
    public var handshakeTimeout: Duration?
    /// How long a connection may go without a byte moving either way, and nothing being read for it, before it is
    /// dropped: a client with nothing in flight, or one that stopped reading its replies; nil: no limit.
    public var idleTimeout: Duration?
    /// How long a connection's replies may wait with no slice of them taken by the socket (and no request at work)
    /// before it is dropped: the replies hold the server's reply budget from every other client. A reply is written
    /// in slices of 1 MiB, so a slow reader that keeps reading is not dropped. nil: no limit.
    public var replyStallTimeout: Duration?

    /// The largest reply the server builds in one piece: a 32 MiB read as structured replies over 512-byte
    /// clusters, a chunk header for each.
    public static let largestReply = ReplyCost.read(length: NBDWire.maximumRequest, structured: true)

    /// 64 MiB of replies per connection and 512 MiB in all, 128 connections, 30 s to negotiate, 5 minutes idle,
    /// 30 s for replies left unread.
    public init(
        replyBytesPerConnection: Int = 64 << 20, replyBytes: Int = 512 << 20, maximumConnections: Int = 128,
        handshakeTimeout: Duration? = .seconds(30), idleTimeout: Duration? = .seconds(300),
        replyStallTimeout: Duration? = .seconds(30)
    ) {
        self.replyBytesPerConnection = replyBytesPerConnection
        self.replyBytes = replyBytes
        self.maximumConnections = maximumConnections
        self.handshakeTimeout = handshakeTimeout
        self.idleTimeout = idleTimeout
        self.replyStallTimeout = replyStallTimeout
    }

    /// The per-connection budget as applied: never below the largest reply.
    var connectionBudget: Int { max(replyBytesPerConnection, Self.largestReply) }
    /// The server-wide budget as applied: never below one connection's.
    var serverBudget: Int { max(replyBytes, connectionBudget) }
}
