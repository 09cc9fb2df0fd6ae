import NBD
import NIOCore
import NIOPosix
import NIOSSL

#if canImport(Glibc)
    import Glibc
#endif

/// One connection to an NBD server on which the probe writes and reads the protocol's bytes itself, so that it sees
/// exactly what the server sends. Every read waits at most the stall timeout.
///
/// Not for concurrent use: one check drives one connection at a time, as a client's single thread would.
final class ProbeConnection: Sendable {
    private let channel: any Channel
    private let collector: NIOLoopBound<ByteCollector>
    /// How long a read waits for the server.
    let stallTimeout: Duration

    private init(channel: any Channel, collector: NIOLoopBound<ByteCollector>, stallTimeout: Duration) {
        self.channel = channel
        self.collector = collector
        self.stallTimeout = stallTimeout
    }

    /// Connects to where `uri` points (TCP or a unix socket), within `stallTimeout`.
    static func open(_ uri: NBDURI, stallTimeout: Duration) async throws(ProbeError) -> ProbeConnection {
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(TimeAmount(stallTimeout))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteCollector())
                }
            }
        let channel: any Channel
        do {
            switch uri.transport {
            case .tcp(let host, let port): channel = try await bootstrap.connect(host: host, port: port ?? 10809).get()
            case .unix(let socket): channel = try await bootstrap.connect(unixDomainSocketPath: socket).get()
            case .vsock:
                throw ProbeError(.invalidRequest, "the probe reaches servers over TCP or a unix socket, not vsock")
            }
        } catch let error as ProbeError {
            throw error
        } catch {
            throw ProbeError(.connect, "cannot connect to \(uri): \(describe(error))", cause: error)
        }
        do {
            let collector = try await channel.eventLoop.submit {
                NIOLoopBound(
                    try channel.pipeline.syncOperations.handler(type: ByteCollector.self), eventLoop: channel.eventLoop)
            }.get()
            return ProbeConnection(channel: channel, collector: collector, stallTimeout: stallTimeout)
        } catch {
            channel.close(promise: nil)
            throw ProbeError(.connect, "cannot set up the connection to \(uri): \(describe(error))", cause: error)
        }
    }

    /// Sends `bytes`.
    func send(_ bytes: ByteBuffer) async throws(ProbeError) {
        do { try await channel.writeAndFlush(bytes) } catch {
            // What ended the connection (a TLS handshake that failed, say) says more than the failed write.
            let collector = self.collector
            if let ended = try? await channel.eventLoop.submit({ collector.value.endedBy }).get() { throw ended }
            throw ProbeError(.closed, "cannot send to the server: \(describe(error))", cause: error)
        }
    }

    /// Exactly `count` bytes from the server.
    func receive(_ count: Int) async throws(ProbeError) -> ByteBuffer {
        let timeout = TimeAmount(stallTimeout)
        let collector = self.collector
        let loop = channel.eventLoop
        do {
            return try await loop.flatSubmit { collector.value.receive(count, within: timeout, on: loop) }.get()
        } catch let error as ProbeError {
            throw error
        } catch {
            throw ProbeError(.closed, "cannot read from the server: \(describe(error))", cause: error)
        }
    }

    /// The bytes the server sent that nothing read yet (after a reply, extra bytes are a protocol violation).
    func unreadBytes() async -> Int {
        let collector = self.collector
        return (try? await channel.eventLoop.submit { collector.value.unread }.get()) ?? 0
    }

    /// Puts TLS under the connection (after the server acknowledged `NBD_OPT_STARTTLS`), and waits for its handshake.
    func startTLS(_ context: NIOSSLContext, serverHostname: String?) async throws(ProbeError) {
        let channel = self.channel
        do {
            try await channel.eventLoop.submit {
                let handler = try NIOSSLClientHandler(context: context, serverHostname: serverHostname)
                try channel.pipeline.syncOperations.addHandler(handler, position: .first)
            }.get()
        } catch {
            throw ProbeError(.tls, "cannot start TLS: \(describe(error))", cause: error)
        }
    }

    /// Runs `body`, then closes the connection, awaited, whether `body` returns or throws.
    func closing<T: Sendable>(_ body: () async throws(ProbeError) -> T) async throws(ProbeError) -> T {
        do throws(ProbeError) {
            let value = try await body()
            await close()
            return value
        } catch {
            await close()
            throw error
        }
    }

    /// Closes the connection at once, whatever is in flight.
    func close() async {
        try? await channel.close()
    }
}

/// `error` in a few words: an `IOError` (a failed system call) as its errno's text, anything else as it describes itself.
func describe(_ error: any Error) -> String {
    if let error = error as? IOError { return String(cString: strerror(error.errnoCode)) }
    return "\(error)"
}

extension TimeAmount {
    /// `duration`, to the nanosecond.
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
