import NBDProtocol
import NIOCore
import NIOSSL

/// One client's connection: frames what it reads (``HandshakeDecoder``, then ``RequestDecoder``), hands the
/// handshake to ``Negotiation`` and requests to ``Transmission``, and writes what they answer; a request's reply is
/// built by `workers` and written as soon as it is ready (replies may come out of order, as the protocol allows).
///
/// Everything a client sends is checked before use: bytes that cannot be framed (a wrong magic, an option longer than
/// 64 KiB, a write longer than 32 MiB) end the connection; a bad option or request gets the protocol's error and the
/// connection goes on. Replies are held within `limits`: a request is taken only when its reply's bytes fit in the
/// connection's budget and the server's (``ConnectionBudget``), and they stay counted until the reply is written to
/// the socket; while they do not fit, or while the channel is not writable, nothing more is framed and the socket is
/// not read. A client that has not chosen an export within the handshake timeout, that moves nothing for the idle
/// timeout, or that leaves its replies unread for the reply stall timeout, is dropped.
final class NBDConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// What became of the next message.
    private enum Progress {
        case handled
        /// Not all of it is there yet.
        case incomplete
        /// Its reply does not fit in the budget yet: it waits for replies to be written.
        case waiting
    }

    /// The bytes of a reply written at once.
    private static let writeSlice = 1 << 20

    private let workers: ReplyWorkers
    /// The TLS every client must start before any other option, or nil.
    private let tls: NIOSSLContext?
    private let limits: ServerLimits
    private var negotiation: Negotiation
    /// Set once the client chose an export.
    private var transmission: Transmission?
    private var inbound = InboundBytes()
    private var handshakeDecoder = HandshakeDecoder()
    private var requestDecoder = RequestDecoder()
    /// A request already framed whose reply did not fit in the budget: the next one handled.
    private var waitingRequest: NBDRequest?
    private var budget: ConnectionBudget
    private var reading = true
    private var active = false
    /// `process` is running: a write completed inside it asks it to go round again rather than start over.
    private var processing = false
    private var processAgain = false
    private var handshakeTimer: Scheduled<Void>?

    init(
        exports: [ServedExport], workers: ReplyWorkers, tls: NIOSSLContext?, limits: ServerLimits,
        budget: ReplyBudget
    ) {
        negotiation = Negotiation(exports: ExportCatalog(exports), tlsRequired: tls != nil)
        self.workers = workers
        self.tls = tls
        self.limits = limits
        self.budget = ConnectionBudget(server: budget, limits: limits)
    }

    private var closing: Bool { negotiation.state == .closed }

    // MARK: Channel events

    func channelActive(context: ChannelHandlerContext) {
        active = true
        if let timeout = limits.handshakeTimeout {
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            handshakeTimer = context.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
                let (handler, context) = bound.value
                if handler.negotiation.state != .transmission { handler.drop(context) }
            }
        }
        var greeting = context.channel.allocator.buffer(capacity: 18)
        greeting.writeInteger(NBDWire.handshakeMagic)
        greeting.writeInteger(NBDWire.optionMagic)
        greeting.writeInteger(NBDWire.fixedNewstyle | NBDWire.noZeroes)
        context.writeAndFlush(wrapOutboundOut(greeting), promise: nil)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        active = false
        negotiation.close()
        inbound.removeAll()
        waitingRequest = nil
        handshakeTimer?.cancel()
        budget.close(id: ObjectIdentifier(self))
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        inbound.append(unwrapInboundIn(data))
        process(context: context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { process(context: context) }
        context.fireChannelWritabilityChanged()
    }

    /// Nothing moved for the idle timeout, or no reply was taken for the reply stall timeout (``NBDServer`` puts an
    /// `IdleStateHandler` in front): unless a request is at work, the client is gone or does not read its replies.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, budget.requestsAtWork == 0 {
            // `.write`: no slice of the replies waiting was taken by the socket for the reply stall timeout; they
            // hold the server's reply budget from every other client.
            if idle == .all || (idle == .write && budget.held > 0) { return drop(context) }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    // MARK: Framing

    /// Handles every complete message read, until one is incomplete or must wait for replies to be written, flushes
    /// the replies written meanwhile, and reads the socket again only if nothing waits.
    private func process(context: ChannelHandlerContext) {
        guard !processing else {
            processAgain = true
            return
        }
        processing = true
        defer { processing = false }
        repeat {
            processAgain = false
            let waiting = handleMessages(context: context)
            context.flush()
            setReading(!waiting, context: context)
        } while processAgain && !closing
    }

    /// Returns whether a message waits for replies to be written (or for the channel to be writable again).
    private func handleMessages(context: ChannelHandlerContext) -> Bool {
        while !closing, inbound.readableBytes > 0 || waitingRequest != nil {
            // Replies not yet written hold back new messages, however small their replies are.
            guard context.channel.isWritable, !budget.waitingForServer else { return true }
            let progress =
                negotiation.state == .transmission ? nextRequest(context: context) : nextOption(context: context)
            switch progress {
            case .handled: continue
            case .incomplete: return false
            case .waiting: return true
            }
        }
        return false
    }

    /// Starts or stops reading the socket; what arrives meanwhile waits in the kernel, not here.
    private func setReading(_ on: Bool, context: ChannelHandlerContext) {
        guard on != reading, active else { return }
        reading = on
        context.channel.setOption(ChannelOptions.autoRead, value: on).whenComplete { _ in }
    }

    /// Ends the connection: a client that broke the protocol gets nothing more.
    private func drop(_ context: ChannelHandlerContext) {
        negotiation.close()
        inbound.removeAll()
        waitingRequest = nil
        context.close(promise: nil)
    }

    // MARK: Handshake

    private func nextOption(context: ChannelHandlerContext) -> Progress {
        let message: HandshakeMessage
        do {
            guard let decoded = try inbound.next(&handshakeDecoder) else { return .incomplete }
            message = decoded
        } catch {
            drop(context)
            return .handled
        }
        switch negotiation.receive(message, moreBytesFollow: inbound.readableBytes > 0) {
        case .reply(let replies):
            write(replies, context: context)
        case .startTLS(let acknowledgement):
            startTLS(acknowledgement, context: context)
        case .transmission(let export, let replies):
            write(replies, context: context)
            transmission = Transmission(
                export: export, structuredReplies: negotiation.structuredReplies,
                contexts: negotiation.contexts(for: export))
        case .closeAfter(let replies):
            inbound.removeAll()
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(encode(replies, context: context))).whenComplete { _ in
                bound.value.close(promise: nil)
            }
        case .drop:
            drop(context)
        }
        return .handled
    }

    private func write(_ replies: [HandshakeReply], context: ChannelHandlerContext) {
        guard !replies.isEmpty else { return }
        context.write(wrapOutboundOut(encode(replies, context: context)), promise: nil)
    }

    private func encode(_ replies: [HandshakeReply], context: ChannelHandlerContext) -> ByteBuffer {
        var buffer = context.channel.allocator.buffer(capacity: 64)
        for reply in replies { buffer.writeHandshakeReply(reply) }
        return buffer
    }

    /// Acknowledges `NBD_OPT_STARTTLS` in clear, then puts the TLS handler in front of this one, so that the client's
    /// TLS handshake and every byte after it pass through TLS.
    private func startTLS(_ acknowledgement: HandshakeReply, context: ChannelHandlerContext) {
        guard let tls else { return drop(context) }
        context.writeAndFlush(wrapOutboundOut(encode([acknowledgement], context: context)), promise: nil)
        do {
            try context.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls), position: .first)
        } catch {
            drop(context)
        }
    }

    // MARK: Requests

    private func nextRequest(context: ChannelHandlerContext) -> Progress {
        let request: NBDRequest
        if let waiting = waitingRequest {
            request = waiting
            waitingRequest = nil
        } else {
            do {
                guard let decoded = try inbound.next(&requestDecoder) else { return .incomplete }
                request = decoded
            } catch {
                drop(context)
                return .handled
            }
        }
        guard let transmission else {
            drop(context)
            return .handled
        }
        switch transmission.action(for: request) {
        case .reply(let error):
            var reply = context.channel.allocator.buffer(capacity: 32)
            reply.writeImmediateReply(error, cookie: request.cookie, structured: transmission.structuredReplies)
            context.write(wrapOutboundOut(reply), promise: nil)
        case .disconnect:
            negotiation.close()
            inbound.removeAll()
            if budget.requestsAtWork == 0 { context.close(promise: nil) }
        case .build(let work, let cost):
            guard take(cost, context: context) else {
                waitingRequest = request
                return .waiting
            }
            start(work, for: request.cookie, of: transmission, holding: cost, context: context)
        }
        return .handled
    }

    // MARK: Replies

    /// Takes `bytes` for a reply from the budgets; false when they do not fit yet. When the server's budget hands
    /// them over later, the connection goes on.
    private func take(_ bytes: Int, context: ChannelHandlerContext) -> Bool {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        let id = ObjectIdentifier(self)
        return budget.take(bytes) {
            ReplyBudget.Waiter(id: id, bytes: bytes) { bytes in
                eventLoop.execute {
                    let (handler, context) = bound.value
                    handler.budget.receive(bytes, connectionOpen: handler.active)
                    if handler.active { handler.process(context: context) }
                }
            }
        }
    }

    /// Builds the reply of `work` and writes it when done (a failure to read the images is an `EIO` reply); the
    /// `holding` bytes taken for it are corrected to the reply's size, and given back once it is written.
    private func start(
        _ work: ReplyWork, for cookie: UInt64, of transmission: Transmission, holding estimate: Int,
        context: ChannelHandlerContext
    ) {
        budget.startWork()
        let allocator = context.channel.allocator
        let export = transmission.export
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        workers.run(on: context.eventLoop) {
            try work.build(from: export, cookie: cookie, allocator: allocator)
        }.whenComplete { result in
            let (handler, context) = bound.value
            handler.budget.finishWork()
            var reply: ByteBuffer?
            switch result {
            case .success(let built):
                reply = built
            case .failure(is ReplyWork.Failure):
                reply = allocator.buffer(capacity: 32)
                reply!.writeImmediateReply(.io, cookie: cookie, structured: transmission.structuredReplies)
            case .failure:
                context.close(promise: nil)
            }
            handler.send(reply, holding: estimate, context: context)
            if !handler.closing {
                handler.process(context: context)
            } else if handler.budget.requestsAtWork == 0 {
                context.close(promise: nil)
            }
        }
    }

    /// Writes `reply`, whose bytes stay counted until the socket has taken them.
    private func send(_ reply: ByteBuffer?, holding estimate: Int, context: ChannelHandlerContext) {
        let size = reply?.capacity ?? 0
        budget.correct(estimate: estimate, to: size)
        guard var reply, active else { return budget.release(size) }
        // Written in slices, each given back once the socket has taken it: a client reading a large reply slowly
        // shows progress at every slice, which the reply stall timeout looks for, and frees the budget as it goes.
        var unsent = size
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        while reply.readableBytes > 0 {
            let slice = reply.readSlice(length: min(Self.writeSlice, reply.readableBytes))!
            // The last slice gives back what the buffer holds beyond its bytes too.
            let bytes = reply.readableBytes > 0 ? slice.readableBytes : unsent
            unsent -= bytes
            let promise = context.eventLoop.makePromise(of: Void.self)
            promise.futureResult.whenComplete { _ in
                let (handler, context) = bound.value
                handler.budget.release(bytes)
                if handler.active { handler.process(context: context) }
            }
            context.write(wrapOutboundOut(slice), promise: promise)
        }
        context.flush()
    }
}
