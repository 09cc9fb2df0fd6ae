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
        // Bound in a new 0700 folder beside the path, made 0600 there, then linked into place: no client can
        // connect while the socket still has the umask's mode, and an existing file is never replaced.
        let folder: String
        do throws(Errno) {
            let parent = socketPath.lastIndex(of: "/").map { String(socketPath[..<$0]) } ?? "."
            folder = try FilePaths.makeTemporaryFolder((parent.isEmpty ? "" : parent) + "/.pullback-serve-XXXXXX")
        } catch {
            throw StartFailure(message: "cannot listen on \(socketPath): \(error)")
        }
        let privatePath = folder + "/s"
        let channel: any Channel
        do {
            channel = try await bootstrap.bind(unixDomainSocketPath: privatePath, cleanupExistingSocketFile: false)
                .get()
        } catch {
            try? FilePaths.removeFolder(folder)
            throw StartFailure(message: "cannot listen on \(socketPath): \(error)")
        }
        do throws(Errno) {
            defer {
                try? FilePaths.remove(privatePath)
                try? FilePaths.removeFolder(folder)
            }
            try FilePaths.setPermissions(privatePath, .ownerReadWrite)
            try FilePaths.link(privatePath, as: socketPath)  // fails rather than replace an existing file
        } catch {
            try? await channel.close()
            let hint = error == .fileExists ? "; choose a path that does not exist" : ""
            throw StartFailure(message: "cannot listen on \(socketPath): \(error)\(hint)")
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
