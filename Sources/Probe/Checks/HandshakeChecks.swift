import NBD
import NBDProtocol
import NIOCore

/// The handshake's rules: the fixed newstyle greeting, `NO_ZEROES`, `LIST`, `INFO` and `GO` for exports that exist and
/// for one that does not, unknown options, structured replies, meta contexts and TLS.
enum HandshakeChecks {
    static let all: [ProbeCheck] = [
        ProbeCheck("handshake.newstyle", newstyle),
        ProbeCheck("handshake.no-zeroes", noZeroes),
        ProbeCheck("handshake.list", list),
        ProbeCheck("handshake.unknown-export-info") { (context) async throws(ProbeError) -> Verdict in
            try await unknownExport(context, option: .info)
        },
        ProbeCheck("handshake.unknown-export-go") { (context) async throws(ProbeError) -> Verdict in
            try await unknownExport(context, option: .go)
        },
        ProbeCheck("handshake.unknown-option", unknownOption),
        ProbeCheck("handshake.structured-reply", structuredReply),
        ProbeCheck("handshake.meta-context", metaContexts),
        ProbeCheck("handshake.tls", tls),
    ]

    /// A name no server has an export of.
    static let missingExport = "pullback-probe-no-such-export-7f3a9c"

    // MARK: Greeting

    static func newstyle(_ context: ProbeContext) async throws(ProbeError) -> Verdict {
        let (connection, flags) = try await context.handshake()
        await connection.abortHandshake()
        guard flags & NBDWire.fixedNewstyle != 0 else {
            return .fail("NBD_FLAG_FIXED_NEWSTYLE is not in the handshake flags 0x\(String(flags, radix: 16))")
        }
        return .pass("handshake flags 0x\(String(flags, radix: 16))")
    }

    /// With `NBD_FLAG_C_NO_ZEROES`, the reply to `NBD_OPT_EXPORT_NAME` ends after the size and flags; without it, 124
    /// zero bytes follow.
    static func noZeroes(_ context: ProbeContext) async throws(ProbeError) -> Verdict {
        guard !context.uri.requiresTLS || context.options.tls != nil else {
            return .skip("TLS without a configuration")
        }
        var outcomes: [String] = []
        for noZeroes in [true, false] {
            let (connection, flags) = try await context.handshake(noZeroes: noZeroes)
            if noZeroes, flags & NBDWire.noZeroes == 0 {
                await connection.abortHandshake()
                outcomes.append("NO_ZEROES not offered")
                continue
            }
            var name = ByteBuffer()
            name.writeString(context.uri.exportName)
            try await connection.sendOption(NBDWire.Option.exportName.rawValue, data: name)
            var head = try await connection.receive(10)
            let size = head.readInteger(as: UInt64.self) ?? 0
            if !noZeroes {
                let zeros = try await connection.receive(124)
                guard zeros.readableBytesView.allSatisfy({ $0 == 0 }) else {
                    await connection.close()
                    return .fail("without NO_ZEROES, the 124 bytes after NBD_OPT_EXPORT_NAME's reply are not all zero")
                }
            }
            // What follows must be the reply to a read, not leftover padding.
            let export = NegotiatedExport(
                size: size, transmissionFlags: 0, blockSizes: nil, structuredReplies: false, contexts: [:],
                handshakeFlags: flags)
            let request = ProbeRequest(command: .read, offset: 0, length: UInt32(min(size, 512)))
            do throws(ProbeError) {
                _ = try await connection.perform(request, on: export)
            } catch {
                await connection.close()
                return .fail(
                    "after NBD_OPT_EXPORT_NAME \(noZeroes ? "with" : "without") NO_ZEROES, a read's reply is not where it belongs: \(error.message)"
                )
            }
            await connection.disconnect(export)
            outcomes.append(noZeroes ? "no padding with NO_ZEROES" : "124 zero bytes without it")
        }
        return .pass(outcomes.joined(separator: "; "))
    }

    // MARK: Exports

    /// `NBD_OPT_LIST` names exports that `NBD_OPT_INFO` then describes, the URI's own with the size `GO` gave.
    static func list(_ context: ProbeContext) async throws(ProbeError) -> Verdict {
        try await context.withHandshake { (connection, _) async throws(ProbeError) -> Verdict in
            let replies = try await connection.exchange(NBDWire.Option.list.rawValue)
            if let last = replies.last, last.isError {
                let type = NBDWire.Reply(rawValue: last.type)
                guard type == .unsupported || type == .policy else {
                    return .fail(
                        "NBD_OPT_LIST answered \(last.name); a server that will not list says ERR_UNSUP or ERR_POLICY")
                }
                return .skip("the server does not list its exports (\(last.name))")
            }
            var names: [String] = []
            for reply in replies where reply.type == NBDWire.Reply.server.rawValue {
                var data = reply.data
                guard let length = data.readInteger(as: UInt32.self), let name = data.readString(length: Int(length))
                else {
                    return .fail("an NBD_REP_SERVER reply whose name runs past its end")
                }
                names.append(name)
            }
            var sizeNote = ""
            for name in names.prefix(20) {
                let info = try await connection.exchange(
                    NBDWire.Option.info.rawValue,
                    data: .infoRequest(export: name, requests: [NBDWire.Info.blockSize.rawValue]))
                guard let size = exportSize(in: info) else {
                    return .fail(
                        "NBD_OPT_LIST names \"\(name)\" but NBD_OPT_INFO for it answers \(info.last?.name ?? "nothing")\(info.last?.message ?? "")"
                    )
                }
                // Noted, not failed: nbd-server 3.24 reports 0 bytes before NBD_OPT_GO opens the export, and the protocol
                // does not say in so many words that the two must agree.
                if name == context.uri.exportName, size != context.export.size {
                    sizeNote = "; NBD_OPT_INFO gives \"\(name)\" \(size) bytes, NBD_OPT_GO \(context.export.size)"
                }
            }
            return .pass(
                "\(names.count) export\(names.count == 1 ? "" : "s") listed, each described by NBD_OPT_INFO\(sizeNote)")
        }
    }

    /// The size an `NBD_OPT_INFO` or `NBD_OPT_GO` exchange gave (its `NBD_INFO_EXPORT`), when it succeeded.
    static func exportSize(in replies: [OptionReply]) -> UInt64? {
        guard replies.last?.type == NBDWire.Reply.ack.rawValue else { return nil }
        for reply in replies where reply.type == NBDWire.Reply.info.rawValue {
            var data = reply.data
            if data.readInteger(as: UInt16.self) == NBDWire.Info.export.rawValue {
                return data.readInteger(as: UInt64.self)
            }
        }
        return nil
    }

    /// `INFO` or `GO` for an export that is not there gets an error reply (`NBD_REP_ERR_UNKNOWN`), and the handshake
    /// goes on. A server that serves every name (nbdkit's plugins do) has nothing to refuse.
    static func unknownExport(_ context: ProbeContext, option: NBDWire.Option) async throws(ProbeError) -> Verdict {
        try await context.withHandshake { (connection, _) async throws(ProbeError) -> Verdict in
            let label = option == .go ? "NBD_OPT_GO" : "NBD_OPT_INFO"
            let replies = try await connection.exchange(
                option.rawValue, data: .infoRequest(export: missingExport, requests: []))
            guard let last = replies.last else { return .fail("\(label) for a missing export got no reply") }
            if last.isError {
                // The handshake must still be usable: the real export's INFO answers.
                let after = try await connection.exchange(
                    NBDWire.Option.info.rawValue, data: .infoRequest(export: context.uri.exportName, requests: []))
                guard exportSize(in: after) != nil else {
                    return .fail(
                        "after refusing a missing export, \(label)'s handshake no longer describes the real one")
                }
                return .pass("refused with \(last.name)")
            }
            guard exportSize(in: replies) != nil else {
                return .fail("\(label) for a missing export succeeded without NBD_INFO_EXPORT")
            }
            if option == .go { await connection.close() }
            return .skip("the server serves any export name (\(label) of \"\(missingExport)\" succeeded)")
        }
    }

    // MARK: Options

    /// An option the server does not know gets `NBD_REP_ERR_UNSUP`, and the handshake goes on.
    static func unknownOption(_ context: ProbeContext) async throws(ProbeError) -> Verdict {
        try await context.withHandshake { (connection, _) async throws(ProbeError) -> Verdict in
            let unknown: UInt32 = 0x0fff_7e57
            let replies = try await connection.exchange(unknown, data: .infoRequest(export: "", requests: []))
            guard let last = replies.last, last.type == NBDWire.Reply.unsupported.rawValue else {
                return .fail(
                    "option 0x\(String(unknown, radix: 16)) answered \(replies.last?.name ?? "nothing"); an unknown option gets NBD_REP_ERR_UNSUP"
                )
            }
            let after = try await connection.exchange(
                NBDWire.Option.info.rawValue, data: .infoRequest(export: context.uri.exportName, requests: []))
            guard exportSize(in: after) != nil else {
                return .fail("after NBD_REP_ERR_UNSUP, the handshake no longer describes the export")
            }
            return .pass()
        }
    }

    /// Reads give the same bytes with structured replies and without.
    static func structuredReply(_ context: ProbeContext) async throws(ProbeError) -> Verdict {
        let length = UInt32(min(context.export.size, 256 << 10))
        let request = ProbeRequest(command: .read, offset: 0, length: length)
        var plan = NegotiationPlan(export: context.uri.exportName)
        var seen: [[UInt8]] = []
        var structured = false
        for asked in [true, false] {
            plan.structuredReplies = asked
            let bytes = try await context.withConnection(plan) { (connection, export) throws(ProbeError) -> [UInt8]? in
                if asked { structured = export.structuredReplies }
                let reply = try await connection.perform(request, on: export)
                if let code = reply.errorCode {
                    throw ProbeError(.protocolViolation, "a read failed with error \(code)")
                }
                return reply.readData(offset: 0, length: length)?.bytes
            }
            guard let bytes else { return .fail("a read's reply holds data outside what was asked") }
            seen.append(bytes)
        }
        guard seen[0] == seen[1] else {
            return .fail("the first \(length) bytes differ between structured and simple replies")
        }
        return .pass(structured ? "negotiated; the same bytes either way" : "not offered; simple replies read")
    }

    /// The export's meta contexts, as `NBD_OPT_LIST_META_CONTEXT` with no query lists them (after structured
    /// replies); empty when the server offers none.
    static func listMetaContexts(_ context: ProbeContext) async throws(ProbeError) -> [String] {
        try await context.withHandshake { (connection, _) async throws(ProbeError) -> [String] in
            guard
                try await connection.exchange(NBDWire.Option.structuredReply.rawValue).last?.type
                    == NBDWire.Reply.ack.rawValue
            else { return [] }
            let replies = try await connection.exchange(
                NBDWire.Option.listMetaContext.rawValue,
                data: .metaContextRequest(export: context.uri.exportName, queries: []))
            return replies.compactMap { reply in
                guard reply.type == NBDWire.Reply.metaContext.rawValue else { return nil }
                var data = reply.data
                _ = data.readInteger(as: UInt32.self)
                return data.readString(length: data.readableBytes)
            }
        }
    }

    /// Each listed meta context can be set on its own, and is given back under its name.
    static func metaContexts(_ context: ProbeContext) async throws(ProbeError) -> Verdict {
        guard context.export.structuredReplies else { return .skip("no structured replies, so no meta contexts") }
        guard !context.listedContexts.isEmpty else {
            return .skip("the server lists no meta context for the export")
        }
        for name in context.listedContexts.prefix(32) {
            var plan = NegotiationPlan(export: context.uri.exportName)
            plan.metaContexts = [name]
            let set = try await context.withConnection(plan) { (_, export) throws(ProbeError) in export.contexts }
            guard Array(set.values) == [name] else {
                return .fail(
                    "NBD_OPT_SET_META_CONTEXT of listed \"\(name)\" gave \(set.values.sorted()); it must give it back, once"
                )
            }
        }
        return .pass(context.listedContexts.joined(separator: ", "))
    }

    // MARK: TLS

    /// Over `nbds`, the whole probe ran under TLS; a plain client must then be refused with `NBD_REP_ERR_TLS_REQD`.
    /// Over `nbd`, whether the server offers TLS at all.
    static func tls(_ context: ProbeContext) async throws(ProbeError) -> Verdict {
        let connection = try await ProbeConnection.open(context.uri, stallTimeout: context.options.stallTimeout)
        return try await connection.closing { () async throws(ProbeError) -> Verdict in
            _ = try await connection.readGreeting()
            try await connection.sendClientFlags(UInt32(NBDWire.fixedNewstyle))
            if context.uri.requiresTLS {
                let replies = try await connection.exchange(
                    NBDWire.Option.go.rawValue, data: .infoRequest(export: context.uri.exportName, requests: []))
                guard replies.last?.type == NBDWire.Reply.tlsRequired.rawValue else {
                    return .fail(
                        "a client without TLS asking NBD_OPT_GO got \(replies.last?.name ?? "nothing"); a server requiring TLS answers NBD_REP_ERR_TLS_REQD"
                    )
                }
                return .pass("handshake under TLS; a plain client refused with NBD_REP_ERR_TLS_REQD")
            }
            let replies = try await connection.exchange(NBDWire.Option.startTLS.rawValue)
            if replies.last?.type == NBDWire.Reply.ack.rawValue {
                return .skip("the server offers TLS; probe an nbds:// URI to check it")
            }
            return .skip("plain connection; the server does not offer TLS (\(replies.last?.name ?? "no reply"))")
        }
    }
}
