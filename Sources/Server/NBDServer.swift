import FileIO
import NIOCore
import NIOPosix
import SystemPackage

/// A read-only NBD server: listens on a unix socket and serves `exports` to any number of clients at once, until the
/// task that runs it is cancelled.
public enum NBDServer {
    /// What a server needs from a caller's layer when it cannot start.
    public struct StartFailure: Error, Sendable {
        public var message: String
    }

    /// Serves `exports` on a new unix socket at `socketPath` (0600), calls `ready` once clients can connect, and
    /// returns when the task is cancelled, after closing the socket and removing its file.
    public static func serve(
        _ exports: [ServedExport], socketPath: String, ready: @Sendable () -> Void = {}
    ) async throws(StartFailure) {
        let pool = NIOThreadPool.singleton
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 64)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NBDConnectionHandler(exports: exports, pool: pool))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.bind(unixDomainSocketPath: socketPath, cleanupExistingSocketFile: false).get()
        } catch {
            throw StartFailure(message: "cannot listen on \(socketPath): \(error)")
        }
        do throws(Errno) {
            try FilePaths.setPermissions(socketPath, .ownerReadWrite)
        } catch {
            try? await channel.close()
            throw StartFailure(message: "cannot make \(socketPath) private: \(error)")
        }
        ready()
        await withTaskCancellationHandler {
            try? await channel.closeFuture.get()
        } onCancel: {
            channel.close(promise: nil)
        }
        try? FilePaths.remove(socketPath)
    }
}
