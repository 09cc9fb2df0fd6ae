import NIOCore
import NIOPosix
import NIOSSL
import QCOW2

/// One client's connection: the fixed newstyle handshake, option haggling, then requests, each answered as soon as
/// its data is read on the I/O thread pool (replies may come out of order, as the protocol allows).
///
/// Everything a client sends is checked before use: a wrong magic, an option longer than 64 KiB or a request longer
/// than 32 MiB ends the connection; a bad option or request gets the protocol's error and the connection goes on.
/// Replies are held within `limits`: a request is taken only when its reply's bytes fit in the connection's budget
/// and the server's (``ReplyBudget``), and they stay counted until the reply is written to the socket; while they do
/// not fit, or while the channel is not writable, the handler stops reading the socket. A client that has not chosen
/// an export within the handshake timeout, that moves nothing for the idle timeout, or that leaves its replies
/// unread for the reply stall timeout, is dropped.
/// With `tls`, nothing but `STARTTLS` and `ABORT` is accepted until the client has upgraded the connection.
final class NBDConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Phase {
        case clientFlags, options, transmission, closing
    }

    /// What became of the message at the head of `pending`.
    private enum Progress {
        case handled
        /// Not all of it is there yet.
        case incomplete
        /// Its reply does not fit in the budget yet: it waits for replies to be written.
        case waiting
    }

    private let exports: [String: ServedExport]
    private let pool: NIOThreadPool
    /// The TLS every client must start before any other option, or nil.
    private let tls: NIOSSLContext?
    private var tlsActive = false
    private let limits: ServerLimits
    private let budget: ReplyBudget
    private var phase = Phase.clientFlags
    private var pending: ByteBuffer?
    private var noZeroes = false
    private var structuredReplies = false
    private var export: ServedExport?
    /// The meta contexts selected, and the export they were selected for.
    private var contexts: (export: String, selected: [MetaContext])?
    /// Reply bytes this connection holds, taken from `budget` too: requests at work and replies not yet written.
    private var held = 0
    /// Bytes `budget` handed over after the request at the head of `pending` waited for them.
    private var granted = 0
    private var waitingForBudget = false
    /// Requests at work on the thread pool.
    private var requestsInFlight = 0
    /// The most requests of one connection at work at once, as qemu-nbd allows: the pool's threads are shared, and
    /// a client must not queue more work ahead of the others than this, whatever its replies cost.
    private static let maximumRequestsAtWork = 16
    /// The bytes still to come of a refused write's payload, thrown away as they arrive.
    private var discarding = 0
    private var reading = true
    private var active = false
    /// `process` is running: a write completed inside it asks it to go round again rather than start over.
    private var processing = false
    private var processAgain = false
    private var handshakeTimer: Scheduled<Void>?

    init(exports: [ServedExport], pool: NIOThreadPool, tls: NIOSSLContext?, limits: ServerLimits, budget: ReplyBudget) {
        self.exports = Dictionary(exports.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.pool = pool
        self.tls = tls
        self.limits = limits
        self.budget = budget
    }

    func channelActive(context: ChannelHandlerContext) {
        active = true
        if let timeout = limits.handshakeTimeout {
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            handshakeTimer = context.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
                let (handler, context) = bound.value
                if handler.phase != .transmission { handler.drop(context) }
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
        phase = .closing
        pending = nil
        handshakeTimer?.cancel()
        // Bytes handed over for a request that will never run go back; so do those still on their way.
        if granted > 0 { budget.give(granted) }
        granted = 0
        if waitingForBudget, budget.leave(ObjectIdentifier(self)) { waitingForBudget = false }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if pending == nil { pending = incoming } else { pending!.writeBuffer(&incoming) }
        process(context: context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { process(context: context) }
        context.fireChannelWritabilityChanged()
    }

    /// Nothing moved for the idle timeout, or no reply was taken for the reply stall timeout (``NBDServer`` puts an
    /// `IdleStateHandler` in front): unless a request is at work, the client is gone or does not read its replies.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, requestsInFlight == 0 {
            // `.write`: no slice of the replies waiting was taken by the socket for the reply stall timeout; they
            // hold the server's reply budget from every other client.
            if idle == .all || (idle == .write && held > 0) { return drop(context) }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    // MARK: Parsing

    /// Handles every complete message in `pending`, until one is incomplete or must wait for replies to be written,
    /// flushes the replies written meanwhile, and reads the socket again only if nothing waits.
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
        } while processAgain && phase != .closing
    }

    /// Returns whether a message waits for replies to be written (or for the channel to be writable again).
    private func handleMessages(context: ChannelHandlerContext) -> Bool {
        // Taken out of `pending` so that this is its only reference: parsing moves its reader index, never copies it.
        guard var buffer = pending else { return false }
        pending = nil
        var waiting = false
        while phase != .closing, buffer.readableBytes > 0 {
            if discarding > 0 {
                let skipped = min(discarding, buffer.readableBytes)
                buffer.moveReaderIndex(forwardBy: skipped)
                discarding -= skipped
                continue
            }
            // Replies not yet written hold back new requests, however small theirs are.
            guard context.channel.isWritable, !waitingForBudget else {
                waiting = true
                break
            }
            let progress: Progress
            switch phase {
            case .clientFlags: progress = clientFlags(&buffer, context: context)
            case .options: progress = option(&buffer, context: context)
            case .transmission: progress = request(&buffer, context: context)
            case .closing: progress = .incomplete
            }
            guard progress == .handled else {
                waiting = progress == .waiting
                break
            }
        }
        if phase != .closing, buffer.readableBytes > 0 {
            buffer.discardReadBytes()
            pending = buffer
        }
        return waiting
    }

    /// Starts or stops reading the socket; what arrives meanwhile waits in the kernel, not here.
    private func setReading(_ on: Bool, context: ChannelHandlerContext) {
        guard on != reading, active else { return }
        reading = on
        context.channel.setOption(ChannelOptions.autoRead, value: on).whenComplete { _ in }
    }

    private func clientFlags(_ buffer: inout ByteBuffer, context: ChannelHandlerContext) -> Progress {
        guard let flags = buffer.readInteger(as: UInt32.self) else { return .incomplete }
        // Only fixed newstyle clients, and no flag we do not know.
        guard flags & UInt32(NBDWire.fixedNewstyle) != 0, flags & ~UInt32(NBDWire.fixedNewstyle | NBDWire.noZeroes) == 0
        else {
            drop(context)
            return .handled
        }
        noZeroes = flags & UInt32(NBDWire.noZeroes) != 0
        phase = .options
        return .handled
    }

    private func option(_ buffer: inout ByteBuffer, context: ChannelHandlerContext) -> Progress {
        guard buffer.readableBytes >= 16, let magic = buffer.getInteger(at: buffer.readerIndex, as: UInt64.self),
            let code = buffer.getInteger(at: buffer.readerIndex + 8, as: UInt32.self),
            let length = buffer.getInteger(at: buffer.readerIndex + 12, as: UInt32.self)
        else { return .incomplete }
        guard magic == NBDWire.optionMagic, length <= NBDWire.maximumOption else {
            drop(context)
            return .handled
        }
        guard buffer.readableBytes >= 16 + Int(length) else { return .incomplete }
        buffer.moveReaderIndex(forwardBy: 16)
        var data = buffer.readSlice(length: Int(length))!
        var reply = context.channel.allocator.buffer(capacity: 64)
        if code == NBDWire.Option.startTLS.rawValue {
            startTLS(&data, remaining: buffer.readableBytes, context: context)
            return .handled
        }
        if tls != nil, !tlsActive, code != NBDWire.Option.abort.rawValue {
            // Forced TLS: EXPORT_NAME cannot be answered with an error, so it ends the connection.
            guard code != NBDWire.Option.exportName.rawValue else {
                drop(context)
                return .handled
            }
            reply.writeOptionReply(code, .tlsRequired)
        } else {
            handleOption(code, &data, into: &reply, context: context)
        }
        if phase == .closing {
            pending = nil
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(reply)).whenComplete { _ in bound.value.close(promise: nil) }
        } else if reply.readableBytes > 0 {
            context.write(wrapOutboundOut(reply), promise: nil)
        }
        return .handled
    }

    private func request(_ buffer: inout ByteBuffer, context: ChannelHandlerContext) -> Progress {
        guard buffer.readableBytes >= 28, let magic = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self),
            let flags = buffer.getInteger(at: buffer.readerIndex + 4, as: UInt16.self),
            let type = buffer.getInteger(at: buffer.readerIndex + 6, as: UInt16.self),
            let cookie = buffer.getInteger(at: buffer.readerIndex + 8, as: UInt64.self),
            let offset = buffer.getInteger(at: buffer.readerIndex + 16, as: UInt64.self),
            let length = buffer.getInteger(at: buffer.readerIndex + 24, as: UInt32.self)
        else { return .incomplete }
        guard magic == NBDWire.requestMagic else {
            drop(context)
            return .handled
        }
        let command = NBDWire.Command(rawValue: type)
        if command == .write {
            // The payload follows; it is thrown away as it comes, and the write refused.
            guard length <= NBDWire.maximumRequest else {
                drop(context)
                return .handled
            }
            buffer.moveReaderIndex(forwardBy: 28)
            discarding = Int(length)
            replyError(.notPermitted, cookie: cookie, context: context)
            return .handled
        }
        guard handleRequest(command, flags: flags, cookie: cookie, offset: offset, length: length, context: context)
        else { return .waiting }
        buffer.moveReaderIndex(forwardBy: 28)
        return .handled
    }

    /// Ends the connection: a client that broke the protocol gets nothing more.
    private func drop(_ context: ChannelHandlerContext) {
        phase = .closing
        pending = nil
        context.close(promise: nil)
    }

    // MARK: Options

    private func handleOption(
        _ code: UInt32, _ data: inout ByteBuffer, into reply: inout ByteBuffer, context: ChannelHandlerContext
    ) {
        switch NBDWire.Option(rawValue: code) {
        case .exportName:
            guard let name = data.readNBDString(length: data.readableBytes), let chosen = lookUp(name) else {
                drop(context)
                return
            }
            export = chosen
            reply.writeInteger(chosen.size)
            reply.writeInteger(transmissionFlags)
            if !noZeroes { reply.writeRepeatingByte(0, count: 124) }
            phase = .transmission
        case .abort:
            // Acknowledged, then the connection ends (option() closes it once the reply is out).
            reply.writeOptionReply(code, .ack)
            phase = .closing
        case .list:
            guard data.readableBytes == 0 else { return reply.writeOptionReply(code, .invalid) }
            for name in exports.keys.sorted() {
                var body = context.channel.allocator.buffer(capacity: 4 + name.utf8.count)
                body.writeInteger(UInt32(name.utf8.count))
                body.writeString(name)
                reply.writeOptionReply(code, .server, body: body)
            }
            reply.writeOptionReply(code, .ack)
        case .info, .go:
            infoOrGo(code, &data, into: &reply, context: context)
        case .structuredReply:
            guard data.readableBytes == 0 else { return reply.writeOptionReply(code, .invalid) }
            structuredReplies = true
            reply.writeOptionReply(code, .ack)
        case .listMetaContext, .setMetaContext:
            metaContexts(code, &data, into: &reply, context: context)
        case .startTLS:
            preconditionFailure("option() hands STARTTLS to startTLS(_:remaining:context:)")
        case nil:
            reply.writeOptionReply(code, .unsupported)
        }
    }

    /// `NBD_OPT_STARTTLS`: acknowledged in clear, then the TLS handler goes in front of this one, so that the
    /// client's handshake and every byte after it pass through TLS. Refused without TLS, or once it is on.
    private func startTLS(_ data: inout ByteBuffer, remaining: Int, context: ChannelHandlerContext) {
        let code = NBDWire.Option.startTLS.rawValue
        var reply = context.channel.allocator.buffer(capacity: 20)
        guard let tls else {
            reply.writeOptionReply(code, .policy)
            return context.write(wrapOutboundOut(reply), promise: nil)
        }
        guard !tlsActive, data.readableBytes == 0 else {
            reply.writeOptionReply(code, .invalid)
            return context.write(wrapOutboundOut(reply), promise: nil)
        }
        // The client must wait for this reply before its TLS handshake: bytes already here are not TLS.
        guard remaining == 0 else { return drop(context) }
        reply.writeOptionReply(code, .ack)
        context.writeAndFlush(wrapOutboundOut(reply), promise: nil)
        do {
            try context.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls), position: .first)
            tlsActive = true
        } catch {
            drop(context)
        }
    }

    private func infoOrGo(
        _ code: UInt32, _ data: inout ByteBuffer, into reply: inout ByteBuffer, context: ChannelHandlerContext
    ) {
        guard let nameLength = data.readInteger(as: UInt32.self), nameLength <= NBDWire.maximumString,
            let name = data.readNBDString(length: Int(nameLength)), let count = data.readInteger(as: UInt16.self),
            data.readableBytes == Int(count) * 2
        else { return reply.writeOptionReply(code, .invalid) }
        guard let chosen = lookUp(name) else { return reply.writeOptionReply(code, .unknownExport) }
        var info = context.channel.allocator.buffer(capacity: 12)
        info.writeInteger(NBDWire.Info.export.rawValue)
        info.writeInteger(chosen.size)
        info.writeInteger(transmissionFlags)
        reply.writeOptionReply(code, .info, body: info)
        var blockSize = context.channel.allocator.buffer(capacity: 14)
        blockSize.writeInteger(NBDWire.Info.blockSize.rawValue)
        blockSize.writeInteger(UInt32(1))
        blockSize.writeInteger(UInt32(4096))
        blockSize.writeInteger(NBDWire.maximumRequest)
        reply.writeOptionReply(code, .info, body: blockSize)
        reply.writeOptionReply(code, .ack)
        if code == NBDWire.Option.go.rawValue {
            export = chosen
            phase = .transmission
        }
    }

    private func metaContexts(
        _ code: UInt32, _ data: inout ByteBuffer, into reply: inout ByteBuffer, context: ChannelHandlerContext
    ) {
        let setting = code == NBDWire.Option.setMetaContext.rawValue
        guard !setting || structuredReplies else { return reply.writeOptionReply(code, .invalid) }
        guard let nameLength = data.readInteger(as: UInt32.self), nameLength <= NBDWire.maximumString,
            let name = data.readNBDString(length: Int(nameLength)), let count = data.readInteger(as: UInt32.self)
        else { return reply.writeOptionReply(code, .invalid) }
        var queries: [String] = []
        for _ in 0..<count {
            guard let length = data.readInteger(as: UInt32.self), length <= NBDWire.maximumString,
                let query = data.readNBDString(length: Int(length))
            else { return reply.writeOptionReply(code, .invalid) }
            queries.append(query)
        }
        guard data.readableBytes == 0 else { return reply.writeOptionReply(code, .invalid) }
        guard let named = lookUp(name) else { return reply.writeOptionReply(code, .unknownExport) }
        let matched = named.metaContexts.filter { candidate in
            if queries.isEmpty { return !setting }
            return queries.contains { query in
                query == candidate.name || (!setting && candidate.name.hasPrefix(query) && query.hasSuffix(":"))
            }
        }
        if setting { contexts = (named.name, matched) }
        for candidate in matched {
            var body = context.channel.allocator.buffer(capacity: 4 + candidate.name.utf8.count)
            body.writeInteger(candidate.id)
            body.writeString(candidate.name)
            reply.writeOptionReply(code, .metaContext, body: body)
        }
        reply.writeOptionReply(code, .ack)
    }

    /// The export named `name`; the empty name is the only export when there is one.
    private func lookUp(_ name: String) -> ServedExport? {
        if name.isEmpty, exports.count == 1 { return exports.values.first }
        return exports[name]
    }

    private var transmissionFlags: UInt16 {
        NBDWire.hasFlags | NBDWire.readOnly | NBDWire.sendFlush | NBDWire.canMultiConn | NBDWire.sendCache
    }

    // MARK: Requests

    /// Answers a request, or starts the work that will; false when its reply does not fit in the budget yet.
    private func handleRequest(
        _ command: NBDWire.Command?, flags: UInt16, cookie: UInt64, offset: UInt64, length: UInt32,
        context: ChannelHandlerContext
    ) -> Bool {
        guard let export else {
            drop(context)
            return true
        }
        switch command {
        case .disconnect:
            phase = .closing
            pending = nil
            if requestsInFlight == 0 { context.close(promise: nil) }
        case .flush:
            replySuccess(cookie: cookie, context: context)
        case .read, .cache, .blockStatus:
            guard length > 0, offset <= export.size, UInt64(length) <= export.size - offset else {
                replyError(.invalid, cookie: cookie, context: context)
                return true
            }
            guard length <= NBDWire.maximumRequest || command == .blockStatus else {
                replyError(.overflow, cookie: cookie, context: context)
                return true
            }
            if command == .cache {
                replySuccess(cookie: cookie, context: context)
            } else if command == .blockStatus {
                guard structuredReplies, let contexts, contexts.export == export.name, !contexts.selected.isEmpty
                else {
                    replyError(.invalid, cookie: cookie, context: context)
                    return true
                }
                let length = min(length, NBDWire.maximumRequest)
                let range = offset..<offset + UInt64(length)
                let (selected, only) = (contexts.selected, flags & NBDWire.requestOne != 0)
                let cost = ReplyCost.blockStatus(length: length, contexts: selected.count, only: only)
                guard take(cost, context: context) else { return false }
                start(context: context, holding: cost) { allocator in
                    try Self.blockStatus(
                        export, range: range, contexts: selected, only: only, cookie: cookie, allocator: allocator)
                }
            } else {
                let structured = structuredReplies
                let cost = ReplyCost.read(length: length, structured: structured)
                guard take(cost, context: context) else { return false }
                start(context: context, holding: cost) { allocator in
                    try Self.read(
                        export, range: offset..<offset + UInt64(length), structured: structured, cookie: cookie,
                        allocator: allocator)
                }
            }
        case .write, .trim, .writeZeroes:
            replyError(.notPermitted, cookie: cookie, context: context)
        case nil:
            replyError(.invalid, cookie: cookie, context: context)
        }
        return true
    }

    // MARK: Budget

    /// Takes `bytes` for a reply from this connection's budget and the server's; false when they do not fit yet:
    /// this connection's replies must be written (or its requests at work done) first, or the server's budget hands
    /// them over later (`granted`).
    private func take(_ bytes: Int, context: ChannelHandlerContext) -> Bool {
        // One reply at least, however large, so that every request can be answered.
        guard held == 0 || held + bytes <= limits.connectionBudget, requestsInFlight < Self.maximumRequestsAtWork
        else { return false }
        if granted > 0 {
            // Handed over for this very request, which waited at the head of `pending`.
            if granted > bytes { budget.give(granted - bytes) } else { budget.overdraw(bytes - granted) }
            granted = 0
        } else {
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let eventLoop = context.eventLoop
            let waiter = ReplyBudget.Waiter(id: ObjectIdentifier(self), bytes: bytes) { bytes in
                eventLoop.execute {
                    let (handler, context) = bound.value
                    handler.received(bytes, context: context)
                }
            }
            guard budget.take(waiter) else {
                waitingForBudget = true
                return false
            }
        }
        held += bytes
        return true
    }

    /// The server's budget handed over `bytes` this connection waited for.
    private func received(_ bytes: Int, context: ChannelHandlerContext) {
        waitingForBudget = false
        guard active else { return budget.give(bytes) }
        granted = bytes
        process(context: context)
    }

    /// Gives back `bytes` of this connection's replies.
    private func release(_ bytes: Int) {
        held -= bytes
        budget.give(bytes)
    }

    /// Runs `work` on the thread pool and writes the reply it builds when done (a failure is an EIO reply); the
    /// `holding` bytes taken for it are corrected to the reply's size, and given back once it is written.
    private func start(
        context: ChannelHandlerContext, holding estimate: Int,
        _ work: @escaping @Sendable (ByteBufferAllocator) throws -> ByteBuffer
    ) {
        requestsInFlight += 1
        let allocator = context.channel.allocator
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        pool.runIfActive(eventLoop: context.eventLoop) { try work(allocator) }.whenComplete { result in
            let (handler, context) = loopBound.value
            handler.requestsInFlight -= 1
            var reply: ByteBuffer?
            switch result {
            case .success(let built): reply = built
            case .failure(let error as RequestFailure):
                reply = allocator.buffer(capacity: 32)
                handler.writeError(error.error, cookie: error.cookie, into: &reply!)
            case .failure: context.close(promise: nil)
            }
            handler.send(reply, holding: estimate, context: context)
            if handler.phase == .closing {
                if handler.requestsInFlight == 0 { context.close(promise: nil) }
            } else {
                handler.process(context: context)
            }
        }
    }

    /// Writes `reply`, whose bytes stay counted until the socket has taken them.
    private func send(_ reply: ByteBuffer?, holding estimate: Int, context: ChannelHandlerContext) {
        let size = reply?.capacity ?? 0
        if size > estimate {
            budget.overdraw(size - estimate)
            held += size - estimate
        } else {
            release(estimate - size)
        }
        guard var reply, active else { return release(size) }
        // Written in slices, each given back once the socket has taken it: a client reading a large reply slowly
        // shows progress at every slice, which the reply stall timeout looks for, and frees the budget as it goes.
        var unsent = size
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        while reply.readableBytes > 0 {
            let slice = reply.readSlice(length: min(Self.writeSlice, reply.readableBytes))!
            // The last slice gives back what the buffer holds beyond its bytes too.
            let bytes = reply.readableBytes > 0 ? slice.readableBytes : unsent
            unsent -= bytes
            let promise = context.eventLoop.makePromise(of: Void.self)
            promise.futureResult.whenComplete { _ in
                let (handler, context) = loopBound.value
                handler.release(bytes)
                if handler.active { handler.process(context: context) }
            }
            context.write(wrapOutboundOut(slice), promise: promise)
        }
        context.flush()
    }

    /// The bytes of a reply written at once.
    private static let writeSlice = 1 << 20

    private struct RequestFailure: Error {
        var error: NBDWire.Error
        var cookie: UInt64
    }

    private func replySuccess(cookie: UInt64, context: ChannelHandlerContext) {
        var reply = context.channel.allocator.buffer(capacity: 32)
        if structuredReplies {
            reply.writeChunkHeader(.none, done: true, cookie: cookie, length: 0)
        } else {
            reply.writeSimpleReply(error: 0, cookie: cookie)
        }
        context.write(wrapOutboundOut(reply), promise: nil)
    }

    private func replyError(_ error: NBDWire.Error, cookie: UInt64, context: ChannelHandlerContext) {
        var reply = context.channel.allocator.buffer(capacity: 32)
        writeError(error, cookie: cookie, into: &reply)
        context.write(wrapOutboundOut(reply), promise: nil)
    }

    private func writeError(_ error: NBDWire.Error, cookie: UInt64, into reply: inout ByteBuffer) {
        if structuredReplies {
            reply.writeChunkHeader(.error, done: true, cookie: cookie, length: 6)
            reply.writeInteger(error.rawValue)
            reply.writeInteger(UInt16(0))
        } else {
            reply.writeSimpleReply(error: error.rawValue, cookie: cookie)
        }
    }

    // MARK: Work on the thread pool

    /// A read's reply: with structured replies, a data chunk per stretch of data and a hole chunk per stretch that
    /// reads as zeros; otherwise a simple reply and the bytes. The buffer is allocated at its final size at once.
    private static func read(
        _ export: ServedExport, range: Range<UInt64>, structured: Bool, cookie: UInt64,
        allocator: ByteBufferAllocator
    ) throws -> ByteBuffer {
        do {
            guard structured else {
                var reply = allocator.buffer(capacity: 16 + Int(range.count))
                reply.writeSimpleReply(error: 0, cookie: cookie)
                try reply.writeChainBytes(of: export, at: range.lowerBound, count: Int(range.count))
                return reply
            }
            let extents = try export.chain.map(range)
            let size = extents.reduce(0) { $0 + 20 + ($1.kind == .data ? 8 + Int($1.length) : 12) }
            var reply = allocator.buffer(capacity: size)
            for (index, extent) in extents.enumerated() {
                let done = index == extents.count - 1
                if extent.kind == .data {
                    reply.writeChunkHeader(.offsetData, done: done, cookie: cookie, length: 8 + Int(extent.length))
                    reply.writeInteger(extent.offset)
                    try reply.writeChainBytes(of: export, at: extent.offset, count: Int(extent.length))
                } else {
                    reply.writeChunkHeader(.offsetHole, done: done, cookie: cookie, length: 12)
                    reply.writeInteger(extent.offset)
                    reply.writeInteger(UInt32(extent.length))
                }
            }
            return reply
        } catch {
            throw RequestFailure(error: .io, cookie: cookie)
        }
    }

    /// A block status reply: a chunk per selected context (``MetaContext/flags(of:)``), each of at most
    /// ``ReplyCost/maximumDescriptors`` descriptors from the start of `range`.
    private static func blockStatus(
        _ export: ServedExport, range: Range<UInt64>, contexts: [MetaContext], only: Bool, cookie: UInt64,
        allocator: ByteBufferAllocator
    ) throws -> ByteBuffer {
        let extents: [ChainExtent]
        do { extents = try export.chain.map(range) } catch { throw RequestFailure(error: .io, cookie: cookie) }
        let limit = only ? 1 : ReplyCost.maximumDescriptors
        let chunks = contexts.map { context in (context.id, descriptors(of: extents, in: context, limit: limit)) }
        var reply = allocator.buffer(capacity: chunks.reduce(0) { $0 + 24 + $1.1.count * 8 })
        for (index, (id, descriptors)) in chunks.enumerated() {
            reply.writeChunkHeader(
                .blockStatus, done: index == chunks.count - 1, cookie: cookie, length: 4 + descriptors.count * 8)
            reply.writeInteger(id)
            for descriptor in descriptors {
                reply.writeInteger(descriptor.length)
                reply.writeInteger(descriptor.flags)
            }
        }
        return reply
    }

    /// `extents` as block status descriptors of `context`, neighbours with the same flags joined, at most `limit`.
    private static func descriptors(
        of extents: [ChainExtent], in context: MetaContext, limit: Int
    ) -> [(length: UInt32, flags: UInt32)] {
        var descriptors: [(length: UInt32, flags: UInt32)] = []
        for extent in extents {
            let flags = context.flags(of: extent)
            if let last = descriptors.last, last.flags == flags {
                descriptors[descriptors.count - 1].length += UInt32(extent.length)
            } else if descriptors.count == limit {
                break
            } else {
                descriptors.append((UInt32(extent.length), flags))
            }
        }
        return descriptors
    }
}
