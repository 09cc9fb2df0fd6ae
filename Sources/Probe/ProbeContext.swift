import NBD
import NBDProtocol
import NIOCore

/// What every check starts from: the options, and the export as the first handshake found it.
struct ProbeContext: Sendable {
    var options: ProbeOptions
    /// The export, from a handshake with structured replies and every meta context the server lists.
    var export: NegotiatedExport
    /// The meta contexts the server lists for the export (`NBD_OPT_LIST_META_CONTEXT` with no query); empty when it
    /// has none or cannot list them.
    var listedContexts: [String]

    var uri: NBDURI { options.uri }

    /// A new connection in transmission, negotiated as `plan` says (the URI's export unless it names another).
    func connect(_ plan: NegotiationPlan? = nil) async throws(ProbeError) -> (ProbeConnection, NegotiatedExport) {
        try await ProbeConnection.negotiate(
            uri, plan ?? NegotiationPlan(export: uri.exportName), tls: options.tls,
            stallTimeout: options.stallTimeout)
    }

    /// Runs `body` on a new connection negotiated as `plan` says, and closes it after.
    func withConnection<T: Sendable>(
        _ plan: NegotiationPlan? = nil,
        _ body: (ProbeConnection, NegotiatedExport) async throws(ProbeError) -> T
    ) async throws(ProbeError) -> T {
        let (connection, export) = try await connect(plan)
        do throws(ProbeError) {
            let value = try await body(connection, export)
            await connection.disconnect(export)
            return value
        } catch {
            await connection.close()
            throw error
        }
    }

    /// Runs `body` on a new connection still in the handshake (``handshake(noZeroes:)``), and ends the handshake
    /// after (`NBD_OPT_ABORT`), awaited, so that the next check's connection never waits behind this one.
    func withHandshake<T: Sendable>(
        noZeroes: Bool = true, _ body: (ProbeConnection, UInt16) async throws(ProbeError) -> T
    ) async throws(ProbeError) -> T {
        let (connection, flags) = try await handshake(noZeroes: noZeroes)
        do throws(ProbeError) {
            let value = try await body(connection, flags)
            await connection.abortHandshake()
            return value
        } catch {
            await connection.close()
            throw error
        }
    }

    /// A new connection still in the handshake, after the greeting and the client's flags (and TLS for `nbds`).
    func handshake(noZeroes: Bool = true) async throws(ProbeError) -> (ProbeConnection, handshakeFlags: UInt16) {
        let connection = try await ProbeConnection.open(uri, stallTimeout: options.stallTimeout)
        do throws(ProbeError) {
            let flags = try await connection.readGreeting()
            let clientFlags =
                UInt32(NBDWire.fixedNewstyle)
                | (noZeroes && flags & NBDWire.noZeroes != 0 ? UInt32(NBDWire.noZeroes) : 0)
            try await connection.sendClientFlags(clientFlags)
            if uri.requiresTLS {
                let replies = try await connection.exchange(NBDWire.Option.startTLS.rawValue)
                guard replies.last?.type == NBDWire.Reply.ack.rawValue, let tls = options.tls else {
                    throw ProbeError(
                        .tls, "the server answered NBD_OPT_STARTTLS with \(replies.last?.name ?? "nothing")")
                }
                try await connection.startTLS(tls, serverHostname: uri.tlsHostname ?? uri.tcpHost)
            }
            return (connection, flags)
        } catch {
            await connection.close()
            throw error
        }
    }
}

extension ProbeConnection {
    /// Ends transmission politely (`NBD_CMD_DISC`) and closes.
    func disconnect(_ export: NegotiatedExport) async {
        try? await send(ProbeRequest(command: .disconnect, offset: 0, length: 0), cookie: 0)
        await close()
    }

    /// Ends the handshake politely (`NBD_OPT_ABORT`) and closes.
    func abortHandshake() async {
        try? await sendOption(NBDWire.Option.abort.rawValue)
        await close()
    }
}
