import NBDProtocol
import NIOCore

/// The transmission phase of one connection: what each request gets, given the export chosen and what the
/// handshake settled. Read-only: writes, trims and zeroing are refused; flush and cache succeed and do nothing.
struct Transmission {
    let export: ServedExport
    /// Replies are structured (`NBD_OPT_STRUCTURED_REPLY` was acknowledged).
    let structuredReplies: Bool
    /// The meta contexts block status reports, selected for this export during the handshake.
    let contexts: [MetaContext]

    /// What the connection does with a request.
    enum Action: Equatable {
        /// Answers at once: success (nil) or the error.
        case reply(NBDWire.Error?)
        /// Builds the reply from the export on the thread pool, once `cost` bytes of the reply budget are taken.
        case build(ReplyWork, cost: Int)
        /// The client is done: the connection closes once the replies at work are written.
        case disconnect
    }

    func action(for request: NBDRequest) -> Action {
        switch request.command {
        case .disconnect: .disconnect
        case .flush: .reply(nil)
        case .read, .cache, .blockStatus: readOrBlockStatus(request)
        case .write, .trim, .writeZeroes: .reply(.notPermitted)
        case nil: .reply(.invalid)
        }
    }

    /// A read, cache or block status request: within the export, and at most ``NBDWire/maximumRequest`` bytes
    /// except for block status, which covers at most that much and says so by the lengths it returns.
    private func readOrBlockStatus(_ request: NBDRequest) -> Action {
        let (offset, length) = (request.offset, request.length)
        guard length > 0, offset <= export.size, UInt64(length) <= export.size - offset else { return .reply(.invalid) }
        guard length <= NBDWire.maximumRequest || request.command == .blockStatus else { return .reply(.overflow) }
        switch request.command {
        case .cache:
            return .reply(nil)
        case .blockStatus:
            guard structuredReplies, !contexts.isEmpty else { return .reply(.invalid) }
            let covered = min(length, NBDWire.maximumRequest)
            let only = request.flags & NBDWire.requestOne != 0
            return .build(
                .blockStatus(offset..<offset + UInt64(covered), contexts: contexts, only: only),
                cost: ReplyCost.blockStatus(length: covered, contexts: contexts.count, only: only))
        default:
            return .build(
                .read(offset..<offset + UInt64(length), structured: structuredReplies),
                cost: ReplyCost.read(length: length, structured: structuredReplies))
        }
    }
}

extension ByteBuffer {
    /// Writes the reply of a request answered at once, success or `error`, as a simple reply or a structured one.
    mutating func writeImmediateReply(_ error: NBDWire.Error?, cookie: UInt64, structured: Bool) {
        switch (error, structured) {
        case (nil, true):
            writeChunkHeader(.none, done: true, cookie: cookie, length: 0)
        case (nil, false):
            writeSimpleReply(error: 0, cookie: cookie)
        case (let error?, true):
            writeChunkHeader(.error, done: true, cookie: cookie, length: 6)
            writeInteger(error.rawValue)
            writeInteger(UInt16(0))  // no message
        case (let error?, false):
            writeSimpleReply(error: error.rawValue, cookie: cookie)
        }
    }
}
