import NIOCore
import NIOSSL
import TestSupport
import Testing

@testable import Server

/// Forced TLS: before STARTTLS, every option but ABORT is refused with ERR_TLS_REQD, and EXPORT_NAME, which cannot
/// be refused, ends the connection.
@Suite struct TLSRequiredTests {
    let exports: TestExports

    init() throws {
        exports = try TestExports()
    }

    /// A server context from a throwaway self-signed certificate made with openssl.
    func tlsContext() async throws -> NIOSSLContext {
        let (key, certificate) = (exports.folder.file("key.pem"), exports.folder.file("cert.pem"))
        let result = try await ChildProcess.run([
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", certificate, "-subj", "/CN=127.0.0.1", "-days", "1",
        ])
        #expect(result.exitCode == 0, "\(result.stderr)")
        return try ServerTLS(certificate: certificate, key: key).context
    }

    @Test("options before STARTTLS get ERR_TLS_REQD and negotiation goes on")
    func optionsRefused() async throws {
        let disk = try exports.written("disk", size: 4096)
        let connection = try EmbeddedNBDConnection.negotiating([disk], tls: try await tlsContext())
        let options: [(UInt32, ByteBuffer)] = [
            (NBDNumbers.Option.list, ByteBuffer()), (NBDNumbers.Option.structuredReply, ByteBuffer()),
            (NBDNumbers.Option.info, ClientMessages.exportChoice("disk")),
            (NBDNumbers.Option.go, ClientMessages.exportChoice("disk")),
            (NBDNumbers.Option.listMetaContext, ClientMessages.metaContexts("disk", [])),
            (NBDNumbers.Option.setMetaContext, ClientMessages.metaContexts("disk", [])), (99, ByteBuffer()),
        ]
        for (option, data) in options {
            try connection.send(ClientMessages.option(option, data))
            #expect(
                try connection.optionReplies() == [OptionReply(option: option, type: NBDNumbers.Reply.tlsRequired)])
        }
        #expect(connection.isOpen)
    }

    @Test("EXPORT_NAME before STARTTLS ends the connection; ABORT is acknowledged")
    func exportNameAndAbort() async throws {
        let disk = try exports.written("disk", size: 4096)
        let tls = try await tlsContext()
        let named = try EmbeddedNBDConnection.negotiating([disk], tls: tls)
        try named.send(ClientMessages.option(NBDNumbers.Option.exportName, ByteBuffer(string: "disk")))
        #expect(!named.isOpen)
        #expect(try named.received().readableBytes == 0)
        let aborted = try EmbeddedNBDConnection.negotiating([disk], tls: tls)
        try aborted.send(ClientMessages.option(NBDNumbers.Option.abort))
        #expect(try aborted.optionReplies() == [OptionReply(option: 2, type: NBDNumbers.Reply.ack)])
        #expect(!aborted.isOpen)
    }

    @Test("STARTTLS with data is invalid; followed by bytes it ends the connection; alone it starts TLS")
    func startTLS() async throws {
        let disk = try exports.written("disk", size: 4096)
        let tls = try await tlsContext()
        let connection = try EmbeddedNBDConnection.negotiating([disk], tls: tls)
        try connection.send(ClientMessages.option(NBDNumbers.Option.startTLS, ByteBuffer(bytes: [0])))
        #expect(try connection.optionReplies() == [OptionReply(option: 5, type: NBDNumbers.Reply.invalid)])
        try connection.send(ClientMessages.option(NBDNumbers.Option.startTLS))
        #expect(try connection.optionReplies() == [OptionReply(option: 5, type: NBDNumbers.Reply.ack)])
        // Throws unless the TLS handler is in the pipeline.
        _ = try connection.channel.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self)
        let hasty = try EmbeddedNBDConnection.negotiating([disk], tls: tls)
        try hasty.send(
            ClientMessages.option(NBDNumbers.Option.startTLS) + ClientMessages.option(NBDNumbers.Option.list))
        #expect(!hasty.isOpen)
        #expect(try hasty.received().readableBytes == 0)
    }
}
