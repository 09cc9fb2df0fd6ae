import NIOCore
import Testing

@testable import Server

/// The negotiation's states, on the value alone: which messages move it where.
@Suite struct NegotiationStateTests {
    let exports: TestExports

    init() throws {
        exports = try TestExports()
    }

    func option(_ code: UInt32, _ data: ByteBuffer = ByteBuffer()) -> HandshakeMessage {
        .option(code: code, data: data)
    }

    @Test("with TLS: flags, TLS required, STARTTLS starts it, options are served, GO transmits")
    func withTLS() throws {
        let disk = try exports.written("disk", size: 512)
        var negotiation = Negotiation(exports: ExportCatalog([disk]), tlsRequired: true)
        #expect(negotiation.state == .awaitingClientFlags)
        _ = negotiation.receive(.clientFlags(3), moreBytesFollow: false)
        #expect(negotiation.state == .tlsRequired)
        _ = negotiation.receive(
            option(NBDNumbers.Option.go, ClientMessages.exportChoice("disk")), moreBytesFollow: false)
        #expect(negotiation.state == .tlsRequired)
        guard case .startTLS = negotiation.receive(option(NBDNumbers.Option.startTLS), moreBytesFollow: false) else {
            Issue.record("STARTTLS did not start TLS")
            return
        }
        #expect(negotiation.state == .tlsStarted)
        guard case .reply(let replies) = negotiation.receive(option(NBDNumbers.Option.startTLS), moreBytesFollow: false)
        else {
            Issue.record("a second STARTTLS was not answered")
            return
        }
        #expect(replies == [.option(5, .invalid)])
        let go = negotiation.receive(
            option(NBDNumbers.Option.go, ClientMessages.exportChoice("disk")), moreBytesFollow: true)
        guard case .transmission(let export, _) = go else {
            Issue.record("GO after STARTTLS did not transmit")
            return
        }
        #expect(export.name == "disk")
        #expect(negotiation.state == .transmission)
        guard case .drop = negotiation.receive(option(NBDNumbers.Option.list), moreBytesFollow: false) else {
            Issue.record("an option after GO was accepted")
            return
        }
        #expect(negotiation.state == .closed)
    }

    @Test("without TLS: flags lead to negotiating; the flags, STARTTLS refused by policy, keep it there")
    func withoutTLS() throws {
        var negotiation = Negotiation(
            exports: ExportCatalog([try exports.written("disk", size: 512)]), tlsRequired: false)
        _ = negotiation.receive(.clientFlags(1), moreBytesFollow: false)
        #expect(negotiation.state == .negotiating)
        #expect(!negotiation.noZeroes)
        guard case .reply(let replies) = negotiation.receive(option(NBDNumbers.Option.startTLS), moreBytesFollow: true)
        else {
            Issue.record("STARTTLS without TLS was not refused")
            return
        }
        #expect(replies == [.option(5, .policy)])
        #expect(negotiation.state == .negotiating)
        guard case .closeAfter = negotiation.receive(option(NBDNumbers.Option.abort), moreBytesFollow: false) else {
            Issue.record("ABORT did not close")
            return
        }
        #expect(negotiation.state == .closed)
    }
}
