import NIOCore

/// Pauses accepting for a moment when accept fails (EMFILE: out of descriptors): the listening socket stays readable
/// while clients wait, and NIO would otherwise call accept again at once, keeping a core busy until a descriptor is
/// free. NIO's `AcceptBackoffHandler` does not help here: after a failed accept the channel's read is still pending,
/// so no new read reaches it to delay; turning auto-read off takes the socket out of the poll set instead.
final class AcceptPause: ChannelInboundHandler {
    typealias InboundIn = any Channel
    typealias InboundOut = any Channel

    private let pause: TimeAmount
    private var paused = false

    init(pause: TimeAmount = .milliseconds(250)) {
        self.pause = pause
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is IOError, !paused {
            paused = true
            let channel = context.channel
            channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            context.eventLoop.scheduleTask(in: pause) {
                bound.value.paused = false
                channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
            }
        }
        context.fireErrorCaught(error)
    }
}
