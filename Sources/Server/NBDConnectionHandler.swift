import NIOCore
import NIOPosix
import NIOSSL
import QCOW2

/// One client's connection: the fixed newstyle handshake, option haggling, then requests, each answered as soon as
/// its data is read on the I/O thread pool (replies may come out of order, as the protocol allows).
///
/// Everything a client sends is checked before use: a wrong magic, an option longer than 64 KiB or a request longer
/// than 32 MiB ends the connection; a bad option or request gets the protocol's error and the connection goes on.
/// At most `budget` bytes of reads are in flight per connection: beyond that the handler stops reading the socket.
/// With `tls`, nothing but `STARTTLS` and `ABORT` is accepted until the client has upgraded the connection.
final class NBDConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Phase {
        case clientFlags, options, transmission, closing
    }

    private let exports: [String: ServedExport]
    private let pool: NIOThreadPool
    /// The TLS every client must start before any other option, or nil.
    private let tls: NIOSSLContext?
    private var tlsActive = false
    private let budget = 64 << 20
    private var phase = Phase.clientFlags
    private var pending: ByteBuffer?
    private var noZeroes = false
    private var structuredReplies = false
    private var export: ServedExport?
    /// The meta contexts selected, and the export they were selected for.
    private var contexts: (export: String, selected: [MetaContext])?
    private var bytesInFlight = 0
    private var requestsInFlight = 0

    init(exports: [ServedExport], pool: NIOThreadPool, tls: NIOSSLContext?) {
        self.exports = Dictionary(exports.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.pool = pool
        self.tls = tls
    }

    func channelActive(context: ChannelHandlerContext) {
        var greeting = context.channel.allocator.buffer(capacity: 18)
        greeting.writeInteger(NBDWire.handshakeMagic)
        greeting.writeInteger(NBDWire.optionMagic)
        greeting.writeInteger(NBDWire.fixedNewstyle | NBDWire.noZeroes)
        context.writeAndFlush(wrapOutboundOut(greeting), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if pending == nil { pending = incoming } else { pending!.writeBuffer(&incoming) }
        process(context: context)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    // MARK: Parsing

    /// Handles every complete message in `pending`, until one is incomplete or the read budget is spent, and flushes
    /// the replies written meanwhile.
    private func process(context: ChannelHandlerContext) {
        defer { context.flush() }
        // Taken out of `pending` so that this is its only reference: parsing moves its reader index, never copies it.
        guard var buffer = pending else { return }
        pending = nil
        while phase != .closing, buffer.readableBytes > 0 {
            let handled: Bool
            switch phase {
            case .clientFlags: handled = clientFlags(&buffer, context: context)
            case .options: handled = option(&buffer, context: context)
            case .transmission:
                guard bytesInFlight < budget else {
                    context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
                    handled = false
                    break
                }
                handled = request(&buffer, context: context)
            case .closing: handled = false
            }
            guard handled else { break }
        }
        if phase != .closing, buffer.readableBytes > 0 {
            buffer.discardReadBytes()
            pending = buffer
        }
    }

    private func clientFlags(_ buffer: inout ByteBuffer, context: ChannelHandlerContext) -> Bool {
        guard let flags = buffer.readInteger(as: UInt32.self) else { return false }
        // Only fixed newstyle clients, and no flag we do not know.
        guard flags & UInt32(NBDWire.fixedNewstyle) != 0, flags & ~UInt32(NBDWire.fixedNewstyle | NBDWire.noZeroes) == 0
        else {
            drop(context)
            return true
        }
        noZeroes = flags & UInt32(NBDWire.noZeroes) != 0
        phase = .options
        return true
    }

    private func option(_ buffer: inout ByteBuffer, context: ChannelHandlerContext) -> Bool {
        guard buffer.readableBytes >= 16, let magic = buffer.getInteger(at: buffer.readerIndex, as: UInt64.self),
            let code = buffer.getInteger(at: buffer.readerIndex + 8, as: UInt32.self),
            let length = buffer.getInteger(at: buffer.readerIndex + 12, as: UInt32.self)
        else { return false }
        guard magic == NBDWire.optionMagic, length <= NBDWire.maximumOption else {
            drop(context)
            return true
        }
        guard buffer.readableBytes >= 16 + Int(length) else { return false }
        buffer.moveReaderIndex(forwardBy: 16)
        var data = buffer.readSlice(length: Int(length))!
        var reply = context.channel.allocator.buffer(capacity: 64)
        if code == NBDWire.Option.startTLS.rawValue {
            startTLS(&data, remaining: buffer.readableBytes, context: context)
            return true
        }
        if tls != nil, !tlsActive, code != NBDWire.Option.abort.rawValue {
            // Forced TLS: EXPORT_NAME cannot be answered with an error, so it ends the connection.
            guard code != NBDWire.Option.exportName.rawValue else {
                drop(context)
                return true
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
        return true
    }

    private func request(_ buffer: inout ByteBuffer, context: ChannelHandlerContext) -> Bool {
        guard buffer.readableBytes >= 28, let magic = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self),
            let flags = buffer.getInteger(at: buffer.readerIndex + 4, as: UInt16.self),
            let type = buffer.getInteger(at: buffer.readerIndex + 6, as: UInt16.self),
            let cookie = buffer.getInteger(at: buffer.readerIndex + 8, as: UInt64.self),
            let offset = buffer.getInteger(at: buffer.readerIndex + 16, as: UInt64.self),
            let length = buffer.getInteger(at: buffer.readerIndex + 24, as: UInt32.self)
        else { return false }
        guard magic == NBDWire.requestMagic else {
            drop(context)
            return true
        }
        let command = NBDWire.Command(rawValue: type)
        if command == .write {
            // The payload follows; it is read and thrown away, and the write refused.
            guard length <= NBDWire.maximumRequest else {
                drop(context)
                return true
            }
            guard buffer.readableBytes >= 28 + Int(length) else { return false }
            buffer.moveReaderIndex(forwardBy: 28 + Int(length))
            replyError(.notPermitted, cookie: cookie, context: context)
            return true
        }
        buffer.moveReaderIndex(forwardBy: 28)
        handleRequest(command, flags: flags, cookie: cookie, offset: offset, length: length, context: context)
        return true
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

    private func handleRequest(
        _ command: NBDWire.Command?, flags: UInt16, cookie: UInt64, offset: UInt64, length: UInt32,
        context: ChannelHandlerContext
    ) {
        guard let export else { return drop(context) }
        switch command {
        case .disconnect:
            phase = .closing
            pending = nil
            if requestsInFlight == 0 { context.close(promise: nil) }
        case .flush:
            replySuccess(cookie: cookie, context: context)
        case .read, .cache, .blockStatus:
            guard length > 0, offset <= export.size, UInt64(length) <= export.size - offset else {
                return replyError(.invalid, cookie: cookie, context: context)
            }
            guard length <= NBDWire.maximumRequest || command == .blockStatus else {
                return replyError(.overflow, cookie: cookie, context: context)
            }
            if command == .cache { return replySuccess(cookie: cookie, context: context) }
            if command == .blockStatus {
                guard structuredReplies, let contexts, contexts.export == export.name, !contexts.selected.isEmpty
                else {
                    return replyError(.invalid, cookie: cookie, context: context)
                }
                let range = offset..<offset + UInt64(min(length, NBDWire.maximumRequest))
                let selected = contexts.selected
                start(context: context, bytes: 0) { allocator in
                    try Self.blockStatus(
                        export, range: range, contexts: selected, only: flags & NBDWire.requestOne != 0,
                        cookie: cookie, allocator: allocator)
                }
            } else {
                let structured = structuredReplies
                start(context: context, bytes: Int(length)) { allocator in
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
    }

    /// Runs `work` on the thread pool and writes the reply it builds when done; a failure is an EIO reply.
    private func start(
        context: ChannelHandlerContext, bytes: Int,
        _ work: @escaping @Sendable (ByteBufferAllocator) throws -> ByteBuffer
    ) {
        bytesInFlight += bytes
        requestsInFlight += 1
        let allocator = context.channel.allocator
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        pool.runIfActive(eventLoop: context.eventLoop) { try work(allocator) }.whenComplete { result in
            let (handler, context) = loopBound.value
            handler.bytesInFlight -= bytes
            handler.requestsInFlight -= 1
            switch result {
            case .success(let reply): context.writeAndFlush(handler.wrapOutboundOut(reply), promise: nil)
            case .failure(let error as RequestFailure):
                var reply = allocator.buffer(capacity: 32)
                handler.writeError(error.error, cookie: error.cookie, into: &reply)
                context.writeAndFlush(handler.wrapOutboundOut(reply), promise: nil)
            case .failure: context.close(promise: nil)
            }
            if handler.phase == .closing {
                if handler.requestsInFlight == 0 { context.close(promise: nil) }
            } else if handler.bytesInFlight < handler.budget {
                context.channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
                handler.process(context: context)
            }
        }
    }

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
    /// reads as zeros; otherwise a simple reply and the bytes.
    private static func read(
        _ export: ServedExport, range: Range<UInt64>, structured: Bool, cookie: UInt64,
        allocator: ByteBufferAllocator
    ) throws -> ByteBuffer {
        var reply = allocator.buffer(capacity: Int(range.count) + 64)
        do {
            guard structured else {
                reply.writeSimpleReply(error: 0, cookie: cookie)
                try reply.writeWithUnsafeMutableBytes(minimumWritableBytes: Int(range.count)) { buffer in
                    let target = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<Int(range.count)])
                    try export.chain.read(into: target, at: range.lowerBound)
                    return target.count
                }
                return reply
            }
            let extents = try export.chain.map(range)
            for (index, extent) in extents.enumerated() {
                let done = index == extents.count - 1
                if extent.kind == .data {
                    reply.writeChunkHeader(.offsetData, done: done, cookie: cookie, length: 8 + Int(extent.length))
                    reply.writeInteger(extent.offset)
                    try reply.writeWithUnsafeMutableBytes(minimumWritableBytes: Int(extent.length)) { buffer in
                        let target = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<Int(extent.length)])
                        try export.chain.read(into: target, at: extent.offset)
                        return target.count
                    }
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

    /// A block status reply: a chunk per selected context (``MetaContext/flags(of:)``).
    private static func blockStatus(
        _ export: ServedExport, range: Range<UInt64>, contexts: [MetaContext], only: Bool, cookie: UInt64,
        allocator: ByteBufferAllocator
    ) throws -> ByteBuffer {
        let extents: [ChainExtent]
        do { extents = try export.chain.map(range) } catch { throw RequestFailure(error: .io, cookie: cookie) }
        var reply = allocator.buffer(capacity: 64 + extents.count * 16)
        for (index, context) in contexts.enumerated() {
            var descriptors: [(length: UInt32, flags: UInt32)] = []
            for extent in extents {
                let flags = context.flags(of: extent)
                if let last = descriptors.last, last.flags == flags {
                    descriptors[descriptors.count - 1].length += UInt32(extent.length)
                } else if only, !descriptors.isEmpty {
                    break
                } else {
                    descriptors.append((UInt32(extent.length), flags))
                }
            }
            reply.writeChunkHeader(
                .blockStatus, done: index == contexts.count - 1, cookie: cookie, length: 4 + descriptors.count * 8)
            reply.writeInteger(context.id)
            for descriptor in descriptors {
                reply.writeInteger(descriptor.length)
                reply.writeInteger(descriptor.flags)
            }
        }
        return reply
    }
}
