import FileIO
import NIOCore
import NIOPosix
import SystemPackage

/// A read-only NBD server: listens on a unix socket or a TCP port and serves `exports` to the clients `limits`
/// allow at once, with TLS required when `tls` is given, until the task that runs it is cancelled.
public enum NBDServer {
    /// Serves `exports` on a new unix socket at `socketPath` (0600), calls `ready` once clients can connect, and
    /// returns when the task is cancelled, after closing the socket and removing its file (only if the path still
    /// names that socket: a file put in its place stays).
    public static func serve(
        _ exports: [ServedExport], socketPath: String, tls: ServerTLS? = nil, limits: ServerLimits = ServerLimits(),
        ready: @Sendable () -> Void = {}
    ) async throws(ServerError) {
        let (channel, socket) = try await bindUnixSocket(bootstrap(exports, tls: tls, limits: limits), at: socketPath)
        ready()
        await serve(on: channel)
        if let now = try? FilePaths.status(ofName: socketPath), now.deviceID == socket.deviceID,
            now.inode == socket.inode
        {
            try? FilePaths.remove(socketPath)
        }
    }

    /// Serves `exports` over TCP on `host` and `port` (0: any free port); calls `ready` with the port once clients
    /// can connect, and returns when the task is cancelled.
    public static func serve(
        _ exports: [ServedExport], host: String, port: Int, tls: ServerTLS? = nil,
        limits: ServerLimits = ServerLimits(),
        ready: @Sendable (Int) -> Void = { _ in }
    ) async throws(ServerError) {
        let channel: any Channel
        do {
            channel = try await bootstrap(exports, tls: tls, limits: limits).bind(host: host, port: port).get()
        } catch {
            throw ServerError(.cannotListen, "cannot listen on \(host):\(port): \(error)", cause: error)
        }
        ready(channel.localAddress?.port ?? port)
        await serve(on: channel)
    }

    private static func bootstrap(_ exports: [ServedExport], tls: ServerTLS?, limits: ServerLimits) -> ServerBootstrap {
        let pool = NIOThreadPool.singleton
        let budget = ReplyBudget(bytes: limits.serverBudget)
        let slots = ConnectionSlots(limit: limits.maximumConnections)
        return ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(AcceptPause()) }
            }
            // Writability follows the replies queued: above the high mark the handler stops reading requests.
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 1 << 20, high: 4 << 20))
            .childChannelInitializer { channel in
                // One connection too many is closed at once: a failed initializer closes the channel.
                guard slots.take() else {
                    return channel.eventLoop.makeFailedFuture(ChannelError.inappropriateOperationForState)
                }
                channel.closeFuture.whenComplete { _ in slots.give() }
                return channel.eventLoop.makeCompletedFuture {
                    let handlers = channel.pipeline.syncOperations
                    if limits.idleTimeout != nil || limits.replyStallTimeout != nil {
                        try handlers.addHandler(
                            IdleStateHandler(
                                writeTimeout: limits.replyStallTimeout.map(TimeAmount.init),
                                allTimeout: limits.idleTimeout.map(TimeAmount.init)))
                    }
                    try handlers.addHandler(
                        NBDConnectionHandler(
                            exports: exports, workers: .threadPool(pool), tls: tls?.context, limits: limits,
                            budget: budget))
                }
            }
    }

    /// Serves on `channel` until the task is cancelled.
    private static func serve(on channel: any Channel) async {
        await withTaskCancellationHandler {
            try? await channel.closeFuture.get()
        } onCancel: {
            channel.close(promise: nil)
        }
    }

    /// Binds a unix socket at `socketPath`: in a new 0700 folder beside the path, made 0600 there, then linked into
    /// place, so that no client can connect while the socket still has the umask's mode, and an existing file is
    /// never replaced.
    private static func bindUnixSocket(
        _ bootstrap: ServerBootstrap, at socketPath: String
    ) async throws(ServerError) -> (any Channel, socket: Stat) {
        let folder: String
        do throws(Errno) {
            let parent = socketPath.lastIndex(of: "/").map { String(socketPath[..<$0]) } ?? "."
            folder = try FilePaths.makeTemporaryFolder((parent.isEmpty ? "" : parent) + "/.pullback-serve-XXXXXX")
        } catch {
            throw ServerError(.cannotListen, "cannot listen on \(socketPath): \(error)", cause: error)
        }
        let privatePath = folder + "/s"
        let channel: any Channel
        do {
            channel = try await bootstrap.bind(unixDomainSocketPath: privatePath, cleanupExistingSocketFile: false)
                .get()
        } catch {
            try? FilePaths.removeFolder(folder)
            throw ServerError(.cannotListen, "cannot listen on \(socketPath): \(error)", cause: error)
        }
        do throws(Errno) {
            defer {
                try? FilePaths.remove(privatePath)
                try? FilePaths.removeFolder(folder)
            }
            try FilePaths.setPermissions(privatePath, .ownerReadWrite)
            try FilePaths.link(privatePath, as: socketPath)  // fails rather than replace an existing file
            // The socket's identity, read through the private name: the public one may already be replaced.
            guard let socket = try FilePaths.status(ofName: privatePath) else { throw Errno.noSuchFileOrDirectory }
            return (channel, socket)
        } catch {
            try? await channel.close()
            let hint = error == .fileExists ? "; choose a path that does not exist" : ""
            throw ServerError(.cannotListen, "cannot listen on \(socketPath): \(error)\(hint)", cause: error)
        }
    }
}
