import NIOCore

/// The end of a probe connection's pipeline: keeps what the server sent until the probe asks for it, a given number
/// of bytes at a time, and fails the ask when the server closes or says nothing for the stall timeout. At most
/// ``limit`` bytes are kept: a server that floods fails the ask rather than the probe's memory.
///
/// Lives on its channel's event loop; every call comes through it.
final class ByteCollector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    /// The most bytes kept unread.
    static let limit = 64 << 20

    private var received: ByteBuffer?
    private var waiter: (count: Int, promise: EventLoopPromise<ByteBuffer>, timeout: Scheduled<Void>)?
    private var ended: ProbeError?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if received == nil { received = bytes } else { received!.writeBuffer(&bytes) }
        if (received?.readableBytes ?? 0) > Self.limit {
            end(ProbeError(.protocolViolation, "the server sent more than \(Self.limit >> 20) MiB nobody asked for"))
            context.close(promise: nil)
            return
        }
        deliver()
    }

    func channelInactive(context: ChannelHandlerContext) {
        end(ProbeError(.closed, "the server closed the connection"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        end(ProbeError(.closed, "the connection failed: \(describe(error))", cause: error))
        context.close(promise: nil)
    }

    /// Exactly `count` bytes, once they are all there; fails after `timeout` without them.
    func receive(_ count: Int, within timeout: TimeAmount, on loop: any EventLoop) -> EventLoopFuture<ByteBuffer> {
        let promise = loop.makePromise(of: ByteBuffer.self)
        guard waiter == nil else {
            promise.fail(ProbeError(.invalidRequest, "two reads at once on one probe connection"))
            return promise.futureResult
        }
        let bound = NIOLoopBound(self, eventLoop: loop)
        let scheduled = loop.scheduleTask(in: timeout) { () -> Void in
            bound.value.fail(
                ProbeError(.timedOut, "the server sent nothing for \(timeout.nanoseconds / 1_000_000_000) s"))
        }
        waiter = (count, promise, scheduled)
        deliver()
        return promise.futureResult
    }

    /// Why the connection ended (the server closed it, TLS failed), once it has.
    var endedBy: ProbeError? { ended }

    /// The bytes received and not asked for yet.
    var unread: Int { received?.readableBytes ?? 0 }

    private func deliver() {
        guard let (count, promise, timeout) = waiter else { return }
        if let slice = received?.readSlice(length: count) {
            waiter = nil
            timeout.cancel()
            promise.succeed(slice)
        } else if let ended {
            fail(ended)
        }
    }

    private func end(_ error: ProbeError) {
        if ended == nil { ended = error }
        deliver()
    }

    private func fail(_ error: ProbeError) {
        guard let (_, promise, timeout) = waiter else { return }
        waiter = nil
        timeout.cancel()
        promise.fail(error)
    }
}
