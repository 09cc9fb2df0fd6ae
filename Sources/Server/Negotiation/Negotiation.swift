import NBDProtocol
import NIOCore

/// The fixed newstyle handshake of one connection, from the client's flags to the export it chose, as a value: each
/// message the client sends moves it on and says what to answer. It knows nothing of channels, so that every rule
/// of the protocol it keeps is in one place.
///
/// With TLS required, nothing but `NBD_OPT_STARTTLS` and `NBD_OPT_ABORT` is accepted until TLS has started: every
/// other option gets `NBD_REP_ERR_TLS_REQD`, and `NBD_OPT_EXPORT_NAME`, which cannot be refused, ends the connection.
struct Negotiation {
    enum State: Equatable {
        case awaitingClientFlags
        /// Options are refused until the client starts TLS.
        case tlsRequired
        /// Options are served over TLS.
        case tlsStarted
        /// Options are served; the server has no TLS.
        case negotiating
        /// An export was chosen: requests follow.
        case transmission
        case closed
    }

    /// What the connection does after a message.
    enum Outcome {
        /// Writes the replies (there may be none) and goes on negotiating.
        case reply([HandshakeReply])
        /// Writes the acknowledgement in clear, then puts TLS in front of every byte that follows.
        case startTLS(HandshakeReply)
        /// Writes the replies; the export is chosen and requests follow.
        case transmission(ServedExport, [HandshakeReply])
        /// Writes the replies, then closes the connection (the client aborted).
        case closeAfter([HandshakeReply])
        /// Closes the connection at once: the client broke the protocol, and gets nothing more.
        case drop
    }

    private(set) var state = State.awaitingClientFlags
    private let exports: ExportCatalog
    private let tlsRequired: Bool
    /// The client asked for no zero padding after `NBD_OPT_EXPORT_NAME`'s reply.
    private(set) var noZeroes = false
    /// The client asked for structured replies (`NBD_OPT_STRUCTURED_REPLY`).
    private(set) var structuredReplies = false
    /// The meta contexts last set, and the export they were set for.
    private var selected: (export: String, contexts: [MetaContext])?

    init(exports: ExportCatalog, tlsRequired: Bool) {
        self.exports = exports
        self.tlsRequired = tlsRequired
    }

    /// Moves on with `message`; `moreBytesFollow` says whether the client sent bytes after it already (which it
    /// must not do after `NBD_OPT_STARTTLS`, whose reply it has to wait for).
    mutating func receive(_ message: HandshakeMessage, moreBytesFollow: Bool) -> Outcome {
        switch (state, message) {
        case (.awaitingClientFlags, .clientFlags(let flags)):
            return receiveClientFlags(flags)
        case (.tlsRequired, .option(let code, var data)), (.tlsStarted, .option(let code, var data)),
            (.negotiating, .option(let code, var data)):
            return receiveOption(code, &data, moreBytesFollow: moreBytesFollow)
        default:
            return drop()
        }
    }

    /// The connection is closing: nothing more is negotiated.
    mutating func close() {
        state = .closed
    }

    /// The meta contexts selected for `export`: none unless the last `NBD_OPT_SET_META_CONTEXT` named it.
    func contexts(for export: ServedExport) -> [MetaContext] {
        guard let selected, selected.export == export.name else { return [] }
        return selected.contexts
    }

    // MARK: Client flags

    private mutating func receiveClientFlags(_ flags: UInt32) -> Outcome {
        let known = UInt32(NBDWire.fixedNewstyle | NBDWire.noZeroes)
        // Only fixed newstyle clients, and no flag we do not know.
        guard flags & UInt32(NBDWire.fixedNewstyle) != 0, flags & ~known == 0 else { return drop() }
        noZeroes = flags & UInt32(NBDWire.noZeroes) != 0
        state = tlsRequired ? .tlsRequired : .negotiating
        return .reply([])
    }

    // MARK: Options

    private mutating func receiveOption(_ code: UInt32, _ data: inout ByteBuffer, moreBytesFollow: Bool) -> Outcome {
        switch NBDWire.Option(rawValue: code) {
        case .startTLS:
            return startTLS(data, moreBytesFollow: moreBytesFollow)
        case .abort:
            state = .closed
            return .closeAfter([.option(code, .ack)])
        case _ where state == .tlsRequired:
            // EXPORT_NAME cannot be answered with an error.
            return code == NBDWire.Option.exportName.rawValue ? drop() : .reply([.option(code, .tlsRequired)])
        case .exportName:
            return exportName(&data)
        case .list:
            guard data.readableBytes == 0 else { return .reply([.option(code, .invalid)]) }
            return .reply(
                exports.names.map { .option(code, .server, body: Self.lengthPrefixed($0)) } + [.option(code, .ack)])
        case .info, .go:
            return infoOrGo(code, &data)
        case .structuredReply:
            guard data.readableBytes == 0 else { return .reply([.option(code, .invalid)]) }
            structuredReplies = true
            return .reply([.option(code, .ack)])
        case .listMetaContext, .setMetaContext:
            return .reply(metaContexts(code, &data))
        case nil:
            return .reply([.option(code, .unsupported)])
        }
    }

    /// Refused without TLS, a second time, or with data; acknowledged only when the client waits for the reply:
    /// bytes already sent after it are not TLS.
    private mutating func startTLS(_ data: ByteBuffer, moreBytesFollow: Bool) -> Outcome {
        let code = NBDWire.Option.startTLS.rawValue
        guard tlsRequired else { return .reply([.option(code, .policy)]) }
        guard state == .tlsRequired, data.readableBytes == 0 else { return .reply([.option(code, .invalid)]) }
        guard !moreBytesFollow else { return drop() }
        state = .tlsStarted
        return .startTLS(.option(code, .ack))
    }

    private mutating func exportName(_ data: inout ByteBuffer) -> Outcome {
        guard let name = data.readNBDString(length: data.readableBytes), let chosen = exports.lookUp(name) else {
            return drop()
        }
        state = .transmission
        let reply = HandshakeReply.exportName(
            size: chosen.size, flags: ExportCatalog.transmissionFlags, zeroes: !noZeroes)
        return .transmission(chosen, [reply])
    }

    private mutating func infoOrGo(_ code: UInt32, _ data: inout ByteBuffer) -> Outcome {
        guard let name = OptionData.exportName(&data) else { return .reply([.option(code, .invalid)]) }
        guard let chosen = exports.lookUp(name) else { return .reply([.option(code, .unknownExport)]) }
        var info = ByteBuffer()
        info.writeInteger(NBDWire.Info.export.rawValue)
        info.writeInteger(chosen.size)
        info.writeInteger(ExportCatalog.transmissionFlags)
        var blockSize = ByteBuffer()
        blockSize.writeInteger(NBDWire.Info.blockSize.rawValue)
        blockSize.writeInteger(UInt32(1))
        blockSize.writeInteger(UInt32(4096))
        blockSize.writeInteger(NBDWire.maximumRequest)
        let replies: [HandshakeReply] = [
            .option(code, .info, body: info), .option(code, .info, body: blockSize), .option(code, .ack),
        ]
        guard code == NBDWire.Option.go.rawValue else { return .reply(replies) }
        state = .transmission
        return .transmission(chosen, replies)
    }

    /// Lists the contexts the queries match (every context for no query), or selects those named exactly. A query
    /// ending in a colon lists every context it begins.
    private mutating func metaContexts(_ code: UInt32, _ data: inout ByteBuffer) -> [HandshakeReply] {
        let setting = code == NBDWire.Option.setMetaContext.rawValue
        guard !setting || structuredReplies, let (name, queries) = OptionData.metaContextQueries(&data) else {
            return [.option(code, .invalid)]
        }
        guard let named = exports.lookUp(name) else { return [.option(code, .unknownExport)] }
        let matched = named.metaContexts.filter { candidate in
            if queries.isEmpty { return !setting }
            return queries.contains { query in
                query == candidate.name || (!setting && candidate.name.hasPrefix(query) && query.hasSuffix(":"))
            }
        }
        if setting { selected = (named.name, matched) }
        return matched.map { candidate in
            var body = ByteBuffer()
            body.writeInteger(candidate.id)
            body.writeString(candidate.name)
            return .option(code, .metaContext, body: body)
        } + [.option(code, .ack)]
    }

    private mutating func drop() -> Outcome {
        state = .closed
        return .drop
    }

    private static func lengthPrefixed(_ name: String) -> ByteBuffer {
        var body = ByteBuffer()
        body.writeInteger(UInt32(name.utf8.count))
        body.writeString(name)
        return body
    }
}
