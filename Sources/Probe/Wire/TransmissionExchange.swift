import NBD
import NBDProtocol
import NIOCore

/// One request of the transmission phase.
struct ProbeRequest: Sendable {
    /// `NBD_CMD_*`.
    var command: NBDWire.Command
    /// `NBD_CMD_FLAG_*`.
    var flags: UInt16 = 0
    var offset: UInt64
    var length: UInt32
    /// A write's data.
    var payload: ByteBuffer? = nil
}

/// One chunk of a structured reply, or the whole of a simple one.
enum ReplyChunk: Sendable {
    /// Data read at `offset`.
    case data(offset: UInt64, ByteBuffer)
    /// `length` bytes at `offset` that read as zeros.
    case hole(offset: UInt64, length: UInt32)
    /// Extents of the meta context of id `context`.
    case blockStatus(context: UInt32, [BlockStatusEntry])
    /// An error: its code (an errno of the protocol's), a message, and the offset it is about when the server says.
    case error(code: UInt32, message: String, offset: UInt64?)
}

/// The server's whole reply to one request.
struct ProbeReply: Sendable {
    /// The error of a simple reply; 0 for success or a structured reply.
    var error: UInt32
    var chunks: [ReplyChunk]

    /// The first error, from a simple reply or an error chunk.
    var errorCode: UInt32? {
        if error != 0 { return error }
        for case .error(let code, _, _) in chunks { return code }
        return nil
    }
}

extension ProbeConnection {
    /// The longest chunk the probe reads (a read's data; the probe's reads stay far below).
    static let maximumChunk: UInt32 = 64 << 20

    /// Sends `request` with cookie `cookie`, without reading its reply.
    func send(_ request: ProbeRequest, cookie: UInt64) async throws(ProbeError) {
        var bytes = ByteBuffer()
        bytes.writeInteger(NBDWire.requestMagic)
        bytes.writeInteger(request.flags)
        bytes.writeInteger(request.command.rawValue)
        bytes.writeInteger(cookie)
        bytes.writeInteger(request.offset)
        bytes.writeInteger(request.length)
        if var payload = request.payload { bytes.writeBuffer(&payload) }
        try await send(bytes)
    }

    /// Sends `request` and reads its whole reply (every chunk up to the one marked done).
    func perform(_ request: ProbeRequest, on export: NegotiatedExport, cookie: UInt64 = 1)
        async throws(ProbeError) -> ProbeReply
    {
        try await send(request, cookie: cookie)
        return try await readReply(to: request, on: export, cookie: cookie)
    }

    /// Reads the reply to `request` (sent with `cookie`); throws when it breaks the protocol.
    func readReply(to request: ProbeRequest, on export: NegotiatedExport, cookie: UInt64)
        async throws(ProbeError) -> ProbeReply
    {
        var chunks: [ReplyChunk] = []
        // What all of one reply's chunks may hold: a server that never sends the last chunk cannot take memory.
        var held = 0
        while true {
            var head = try await receive(4)
            let magic = head.readInteger(as: UInt32.self)
            if magic == NBDWire.simpleReplyMagic {
                var rest = try await receive(12)
                let error = rest.readInteger(as: UInt32.self) ?? 0
                try check(cookie: rest.readInteger(as: UInt64.self), against: cookie)
                guard chunks.isEmpty else {
                    throw ProbeError(.protocolViolation, "a simple reply after structured chunks of the same request")
                }
                if error == 0, request.command == .read {
                    return ProbeReply(
                        error: 0, chunks: [.data(offset: request.offset, try await receive(Int(request.length)))])
                }
                return ProbeReply(error: error, chunks: [])
            }
            guard magic == NBDWire.structuredReplyMagic else {
                throw ProbeError(
                    .protocolViolation,
                    "a reply with magic 0x\(String(magic ?? 0, radix: 16)), neither simple nor structured")
            }
            guard export.structuredReplies else {
                throw ProbeError(.protocolViolation, "a structured reply, which was not negotiated")
            }
            var rest = try await receive(16)
            let flags = rest.readInteger(as: UInt16.self) ?? 0
            let type = rest.readInteger(as: UInt16.self) ?? 0
            try check(cookie: rest.readInteger(as: UInt64.self), against: cookie)
            let length = rest.readInteger(as: UInt32.self) ?? 0
            guard length <= Self.maximumChunk else {
                throw ProbeError(.protocolViolation, "a reply chunk of \(length) bytes")
            }
            held += Int(length)
            guard held <= Int(Self.maximumChunk) else {
                throw ProbeError(.protocolViolation, "a reply of more than \(Self.maximumChunk >> 20) MiB in chunks")
            }
            let payload = length == 0 ? ByteBuffer() : try await receive(Int(length))
            if let chunk = try Self.chunk(type: type, payload) { chunks.append(chunk) }
            if flags & NBDWire.chunkDone != 0 { return ProbeReply(error: 0, chunks: chunks) }
        }
    }

    private func check(cookie: UInt64?, against expected: UInt64) throws(ProbeError) {
        guard cookie == expected else {
            throw ProbeError(.protocolViolation, "a reply for cookie \(cookie ?? 0), where \(expected) was outstanding")
        }
    }

    /// The chunk a structured reply chunk of `type` holds; nil for `NBD_REPLY_TYPE_NONE`.
    private static func chunk(type: UInt16, _ payload: ByteBuffer) throws(ProbeError) -> ReplyChunk? {
        var payload = payload
        switch type {
        case NBDWire.ChunkType.none.rawValue:
            guard payload.readableBytes == 0 else {
                throw ProbeError(.protocolViolation, "an NBD_REPLY_TYPE_NONE chunk with a payload")
            }
            return nil
        case NBDWire.ChunkType.offsetData.rawValue:
            guard let offset = payload.readInteger(as: UInt64.self), payload.readableBytes > 0 else {
                throw ProbeError(.protocolViolation, "an NBD_REPLY_TYPE_OFFSET_DATA chunk without data")
            }
            return .data(offset: offset, payload)
        case NBDWire.ChunkType.offsetHole.rawValue:
            guard payload.readableBytes == 12, let offset = payload.readInteger(as: UInt64.self),
                let length = payload.readInteger(as: UInt32.self)
            else { throw ProbeError(.protocolViolation, "an NBD_REPLY_TYPE_OFFSET_HOLE chunk not of 12 bytes") }
            return .hole(offset: offset, length: length)
        case NBDWire.ChunkType.blockStatus.rawValue:
            guard payload.readableBytes >= 12, payload.readableBytes % 8 == 4,
                let context = payload.readInteger(as: UInt32.self)
            else {
                throw ProbeError(.protocolViolation, "an NBD_REPLY_TYPE_BLOCK_STATUS chunk not of 4 + 8n bytes (n ≥ 1)")
            }
            var entries: [BlockStatusEntry] = []
            while let length = payload.readInteger(as: UInt32.self), let flags = payload.readInteger(as: UInt32.self) {
                entries.append(BlockStatusEntry(length: length, flags: flags))
            }
            return .blockStatus(context: context, entries)
        case let type where type & 0x8000 != 0:
            guard let code = payload.readInteger(as: UInt32.self), let count = payload.readInteger(as: UInt16.self),
                let message = payload.readString(length: Int(count))
            else { throw ProbeError(.protocolViolation, "an error chunk shorter than its message") }
            let offset = type == 0x8002 ? payload.readInteger(as: UInt64.self) : nil
            return .error(code: code, message: message, offset: offset)
        default:
            throw ProbeError(.protocolViolation, "a reply chunk of unknown type \(type) (clients must fail on those)")
        }
    }
}

extension ProbeReply {
    /// The bytes a read of `length` at `offset` returned (holes as zeros), and whether every byte was covered exactly
    /// once; nil when the reply holds a chunk outside the range.
    func readData(offset: UInt64, length: UInt32) -> (bytes: [UInt8], coveredOnce: Bool)? {
        var bytes = [UInt8](repeating: 0, count: Int(length))
        // The pieces as ranges of the request, checked for overlaps and gaps once sorted: no per-byte bookkeeping,
        // so a read of the largest request costs its bytes and no more.
        var pieces: [Range<Int>] = []
        for chunk in chunks {
            let (start, size, data): (UInt64, Int, ByteBuffer?)
            switch chunk {
            case .data(let at, let buffer): (start, size, data) = (at, buffer.readableBytes, buffer)
            case .hole(let at, let count): (start, size, data) = (at, Int(count), nil)
            default: continue
            }
            guard start >= offset, start - offset + UInt64(size) <= UInt64(length) else { return nil }
            let from = Int(start - offset)
            if let data { bytes.replaceSubrange(from..<(from + size), with: data.readableBytesView) }
            pieces.append(from..<(from + size))
        }
        pieces.sort { $0.lowerBound < $1.lowerBound }
        var end = 0
        var once = true
        for piece in pieces {
            if piece.lowerBound != end { once = false }
            end = max(end, piece.upperBound)
        }
        return (bytes, once && end == Int(length))
    }
}
