/// How a copy moves its data, whatever its source and target: connections, request size and depth, retries, stall
/// timeout, the buffers it reads into, and whether it maps the whole source first.
public struct TransferOptions: Sendable {
    /// Connections to open when the source allows several (an NBD server with multi-conn). A qcow2 chain is always
    /// read by its own two threads (``QCOW2ChainSource/connectionCount``).
    public var connections: Int
    /// Bytes per read request.
    public var requestSize: Int
    /// Requests in flight per connection of the source.
    public var requestsPerConnection: Int
    /// How reads and block status requests that fail for a passing reason are tried again (an NBD export).
    public var retry: RetryPolicy
    /// How long requests in flight may go without any reply before the copy fails; nil waits forever (an NBD export).
    public var stallTimeout: Duration?
    /// The buffers to read into, shared with copies running at the same time, or nil for a pool of the copy's own.
    public var buffers: BufferPool?
    /// Whether the whole source is mapped first, so that ``CopyProgress/bytesToCopy`` is known early.
    public var measureTotal: Bool
    /// The rate limit that reads of the source wait for, shared by every copy of a run, or nil for none.
    public var rateLimiter: ByteRateLimiter?

    /// The default request size: large enough that per-request costs vanish, small enough to keep many
    /// requests in flight within a small memory bound (see scripts/bench).
    public static let defaultRequestSize = 1 << 20
    /// The default number of requests in flight per connection: 8 in all over 4 connections. More were not faster
    /// on a libvirt export of a running guest nor from qemu-nbd (scripts/bench, 2 GiB, 2 against 8 per connection:
    /// 1.47 s against 2.00 s, 1.11 against 1.16, 1.51 against 1.34), and they cost 24 MiB more of buffers.
    public static let defaultRequestsPerConnection = 2

    /// Options for reading an NBD export over `connections` connections, the defaults otherwise.
    public init(connections: Int = 4) {
        self.connections = connections
        requestSize = Self.defaultRequestSize
        requestsPerConnection = Self.defaultRequestsPerConnection
        retry = RetryPolicy()
        stallTimeout = .seconds(120)
        buffers = nil
        measureTotal = false
        rateLimiter = nil
    }

    /// Options for writing a repository's chain out (a restore, a merge): 16 reads in flight over the chain reader's
    /// two threads, which keeps NIO's thread pool busy without queueing more than it can take.
    public static var chainReading: TransferOptions {
        var options = TransferOptions(connections: 2)
        options.requestsPerConnection = 8
        return options
    }

    /// A pool with a buffer for every request these options keep in flight over ``connections``: give it to copies
    /// that run at the same time (``buffers``), so that their memory stays that of one.
    public func sharedBuffers() -> BufferPool {
        BufferPool(count: max(1, requestsPerConnection * connections), bufferSize: requestSize)
    }

    /// These options with `buffers` to read into.
    public func reading(into buffers: BufferPool?) -> TransferOptions {
        var options = self
        options.buffers = buffers
        return options
    }

    /// The pipeline that moves a copy's data from a source read over `connectionCount` connections.
    func pipeline(connectionCount: Int) -> CopyPipeline {
        CopyPipeline(
            requestSize: requestSize, requestsInFlight: requestsPerConnection * connectionCount,
            measureTotal: measureTotal, buffers: buffers, rateLimiter: rateLimiter)
    }
}

extension NBDBlockSource {
    /// Opens the export `uri` as ``withSource(uri:bitmap:connections:retry:stallTimeout:_:)`` does, with `transfer`'s
    /// connections, retries and stall timeout, runs `body`, and closes everything afterwards.
    public static func withSource<Result: Sendable>(
        uri: String, bitmap: String?, transfer: TransferOptions,
        _ body: (NBDBlockSource) async throws(CopyError) -> Result
    ) async throws(CopyError) -> Result {
        try await withSource(
            uri: uri, bitmap: bitmap, connections: transfer.connections, retry: transfer.retry,
            stallTimeout: transfer.stallTimeout, body)
    }
}
