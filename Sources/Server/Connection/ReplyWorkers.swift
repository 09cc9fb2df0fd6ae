import NIOCore
import NIOPosix

/// Where a connection builds its replies.
enum ReplyWorkers: Sendable {
    /// NIO's thread pool, so that the event loop never waits for the disk.
    case threadPool(NIOThreadPool)
    /// The event loop itself: for tests on `EmbeddedChannel`, whose loop runs on the test's thread alone.
    case eventLoop

    /// Runs `work` and completes on `eventLoop`.
    func run(
        on eventLoop: any EventLoop, _ work: @escaping @Sendable () throws -> ByteBuffer
    ) -> EventLoopFuture<ByteBuffer> {
        switch self {
        case .threadPool(let pool): pool.runIfActive(eventLoop: eventLoop, work)
        case .eventLoop: eventLoop.makeCompletedFuture { try work() }
        }
    }
}
