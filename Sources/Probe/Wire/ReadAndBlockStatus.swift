import NBD
import NBDProtocol
import NIOCore

/// What a read got: every byte asked for, or the server's error.
enum ReadOutcome: Sendable {
    /// The bytes read (holes as zeros), exactly as many as asked.
    case data([UInt8])
    /// The server's error code, and it with the server's message for a failure reason (`EIO (5) ("...")`).
    case refused(code: UInt32, summary: String)
}

/// What a block status request got: each set meta context's descriptors, or the server's error.
enum BlockStatusOutcome: Sendable {
    /// The descriptors of each meta context set on the connection, by its name.
    case extents([String: [BlockStatusEntry]])
    /// The server's error code, and it with the server's message for a failure reason (`EIO (5) ("...")`).
    case refused(code: UInt32, summary: String)
}

extension ProbeConnection {
    /// Reads `length` bytes at `offset`; throws when the reply's chunks lie outside the range, overlap, or (on success)
    /// leave a byte uncovered, which the protocol forbids.
    func read(offset: UInt64, length: UInt32, on export: NegotiatedExport) async throws(ProbeError) -> ReadOutcome {
        let reply = try await perform(ProbeRequest(command: .read, offset: offset, length: length), on: export)
        if let code = reply.errorCode { return .refused(code: code, summary: reply.errorSummary(code)) }
        return .data(try reply.assembled(offset: offset, length: length))
    }

    /// Asks the block status of `length` bytes at `offset`; throws when the reply does not hold exactly one block
    /// status chunk for each meta context set, or holds a read's chunks.
    func blockStatus(offset: UInt64, length: UInt32, flags: UInt16 = 0, on export: NegotiatedExport)
        async throws(ProbeError) -> BlockStatusOutcome
    {
        let request = ProbeRequest(command: .blockStatus, flags: flags, offset: offset, length: length)
        let reply = try await perform(request, on: export)
        if let code = reply.errorCode { return .refused(code: code, summary: reply.errorSummary(code)) }
        let asked = "NBD_CMD_BLOCK_STATUS (offset \(offset), length \(length))"
        var extents: [String: [BlockStatusEntry]] = [:]
        for chunk in reply.chunks {
            guard case .blockStatus(let id, let entries) = chunk else {
                throw ProbeError(.protocolViolation, "\(asked) got a read's data or hole chunk")
            }
            guard let name = export.contexts[id] else {
                throw ProbeError(
                    .protocolViolation, "\(asked) got a chunk for meta context id \(id), which was not set")
            }
            guard extents[name] == nil else {
                throw ProbeError(
                    .protocolViolation, "\(asked) got two chunks for \(name); the protocol says exactly one per context"
                )
            }
            extents[name] = entries
        }
        for name in export.contexts.values.sorted() where extents[name] == nil {
            throw ProbeError(
                .protocolViolation, "\(asked) got no chunk for \(name); the protocol says exactly one per context set")
        }
        return .extents(extents)
    }
}

extension ProbeReply {
    /// The bytes a successful read of `length` at `offset` returned, holes as zeros. Throws when a chunk lies outside
    /// the range, two overlap, or a byte is left uncovered.
    func assembled(offset: UInt64, length: UInt32) throws(ProbeError) -> [UInt8] {
        let asked = "a read (offset \(offset), length \(length))"
        var bytes = [UInt8](repeating: 0, count: Int(length))
        var pieces: [(start: UInt64, count: UInt64)] = []
        for chunk in chunks {
            let piece: (start: UInt64, count: UInt64)
            switch chunk {
            case .data(let start, let data): piece = (start, UInt64(data.readableBytes))
            case .hole(let start, let count): piece = (start, UInt64(count))
            default: continue
            }
            guard piece.start >= offset, piece.start - offset <= UInt64(length),
                piece.count <= UInt64(length) - (piece.start - offset)
            else {
                throw ProbeError(
                    .protocolViolation,
                    "\(asked) got a chunk of \(piece.count) bytes at offset \(piece.start), outside the range asked")
            }
            if case .data(let start, let data) = chunk,
                let copy = data.getBytes(at: data.readerIndex, length: data.readableBytes)
            {
                let from = Int(start - offset)
                bytes.replaceSubrange(from..<(from + copy.count), with: copy)
            }
            pieces.append(piece)
        }
        var next = offset
        for piece in pieces.sorted(by: { $0.start < $1.start }) {
            guard piece.start >= next else {
                throw ProbeError(.protocolViolation, "\(asked) got chunks that overlap at offset \(piece.start)")
            }
            guard piece.start == next else {
                throw ProbeError(.protocolViolation, "\(asked) succeeded but left offset \(next) uncovered")
            }
            next = piece.start + piece.count
        }
        guard next == offset + UInt64(length) else {
            throw ProbeError(.protocolViolation, "\(asked) succeeded but left offset \(next) uncovered")
        }
        return bytes
    }
}
