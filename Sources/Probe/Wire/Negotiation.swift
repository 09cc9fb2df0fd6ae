import NBD
import NBDProtocol
import NIOCore
import NIOSSL

/// What a handshake asks for.
struct NegotiationPlan: Sendable {
    /// The export's name.
    var export: String
    /// Whether to ask for structured replies (`NBD_OPT_STRUCTURED_REPLY`).
    var structuredReplies = true
    /// The meta contexts to set (they need structured replies).
    var metaContexts: [String] = []
    /// Whether to send `NBD_FLAG_C_NO_ZEROES` when the server offers it.
    var noZeroes = true
}

/// What the handshake settled: the export as the server described it for transmission.
struct NegotiatedExport: Sendable {
    /// The export's size in bytes.
    var size: UInt64
    /// The transmission flags (`NBD_FLAG_*`).
    var transmissionFlags: UInt16
    /// `NBD_INFO_BLOCK_SIZE`, when the server sent it.
    var blockSizes: (minimum: UInt32, preferred: UInt32, maximum: UInt32)?
    /// Whether replies are structured.
    var structuredReplies: Bool
    /// The meta contexts set, by the id the server gave each.
    var contexts: [UInt32: String]
    /// The server's handshake flags.
    var handshakeFlags: UInt16

    /// Whether transmission flag `flag` is set.
    func has(_ flag: UInt16) -> Bool { transmissionFlags & flag != 0 }
}

extension ProbeConnection {
    /// Connects to `uri`, goes through the handshake as `plan` says (TLS first for `nbds` URIs, with `tls`) and enters
    /// transmission. Throws when the server refuses the export or breaks the protocol on the way.
    static func negotiate(
        _ uri: NBDURI, _ plan: NegotiationPlan, tls: NIOSSLContext?, stallTimeout: Duration
    ) async throws(ProbeError) -> (ProbeConnection, NegotiatedExport) {
        let connection = try await open(uri, stallTimeout: stallTimeout)
        do throws(ProbeError) {
            let export = try await connection.negotiate(uri, plan, tls: tls)
            return (connection, export)
        } catch {
            await connection.close()
            throw error
        }
    }

    private func negotiate(_ uri: NBDURI, _ plan: NegotiationPlan, tls: NIOSSLContext?)
        async throws(ProbeError) -> NegotiatedExport
    {
        let handshakeFlags = try await readGreeting()
        guard handshakeFlags & NBDWire.fixedNewstyle != 0 else {
            throw ProbeError(.protocolViolation, "the server does not offer the fixed newstyle handshake")
        }
        let noZeroes = plan.noZeroes && handshakeFlags & NBDWire.noZeroes != 0
        try await sendClientFlags(UInt32(NBDWire.fixedNewstyle) | (noZeroes ? UInt32(NBDWire.noZeroes) : 0))
        if uri.requiresTLS {
            guard let tls else { throw ProbeError(.tls, "an nbds:// URI without a TLS configuration") }
            let replies = try await exchange(NBDWire.Option.startTLS.rawValue)
            guard replies.last?.type == NBDWire.Reply.ack.rawValue else {
                throw ProbeError(.tls, "the server answered NBD_OPT_STARTTLS with \(replies.last?.name ?? "nothing")")
            }
            try await startTLS(tls, serverHostname: uri.tlsHostname ?? uri.tcpHost)
        }
        var structured = false
        if plan.structuredReplies {
            structured =
                try await exchange(NBDWire.Option.structuredReply.rawValue).last?.type
                == NBDWire.Reply.ack.rawValue
        }
        var contexts: [UInt32: String] = [:]
        if structured, !plan.metaContexts.isEmpty {
            let replies = try await exchange(
                NBDWire.Option.setMetaContext.rawValue,
                data: .metaContextRequest(export: plan.export, queries: plan.metaContexts))
            for reply in replies where reply.type == NBDWire.Reply.metaContext.rawValue {
                var data = reply.data
                guard let id = data.readInteger(as: UInt32.self), let name = data.readString(length: data.readableBytes)
                else { throw ProbeError(.protocolViolation, "an NBD_REP_META_CONTEXT shorter than its id") }
                contexts[id] = name
            }
        }
        var export = NegotiatedExport(
            size: 0, transmissionFlags: 0, blockSizes: nil, structuredReplies: structured, contexts: contexts,
            handshakeFlags: handshakeFlags)
        try await go(plan.export, into: &export)
        return export
    }

    /// `NBD_OPT_GO` for `name`, asking for its block sizes; fills `export` from the `NBD_REP_INFO` replies.
    private func go(_ name: String, into export: inout NegotiatedExport) async throws(ProbeError) {
        let replies = try await exchange(
            NBDWire.Option.go.rawValue,
            data: .infoRequest(export: name, requests: [NBDWire.Info.blockSize.rawValue]))
        var sawExport = false
        for reply in replies {
            if reply.isError {
                throw ProbeError(
                    .invalidRequest, "the server refused export \"\(name)\": \(reply.name)\(reply.message)")
            }
            guard reply.type == NBDWire.Reply.info.rawValue else { continue }
            var data = reply.data
            switch data.readInteger(as: UInt16.self).flatMap(NBDWire.Info.init(rawValue:)) {
            case .export:
                guard let size = data.readInteger(as: UInt64.self), let flags = data.readInteger(as: UInt16.self) else {
                    throw ProbeError(.protocolViolation, "an NBD_INFO_EXPORT shorter than 12 bytes")
                }
                (export.size, export.transmissionFlags, sawExport) = (size, flags, true)
            case .blockSize:
                guard let minimum = data.readInteger(as: UInt32.self),
                    let preferred = data.readInteger(as: UInt32.self),
                    let maximum = data.readInteger(as: UInt32.self)
                else { throw ProbeError(.protocolViolation, "an NBD_INFO_BLOCK_SIZE shorter than 14 bytes") }
                export.blockSizes = (minimum, preferred, maximum)
            default: continue
            }
        }
        guard sawExport else {
            throw ProbeError(.protocolViolation, "NBD_OPT_GO succeeded without NBD_INFO_EXPORT (the size and flags)")
        }
    }
}

extension OptionReply {
    /// An error reply's message, after a colon; empty when it has none.
    var message: String {
        guard isError, data.readableBytes > 0,
            let text = data.getString(at: data.readerIndex, length: data.readableBytes)
        else { return "" }
        return " (" + String(text.prefix(200)) + ")"
    }
}

extension NBDURI {
    /// The host name of a TCP URI, which its server certificate must name; nil for an IP address, which TLS cannot
    /// send as a server name (the certificate is then checked against the address connected to).
    var tcpHost: String? {
        guard case .tcp(let host, _) = transport, (try? SocketAddress(ipAddress: host, port: 0)) == nil else {
            return nil
        }
        return host
    }
}
