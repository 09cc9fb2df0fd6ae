import NIOCore
import NIOEmbedded
import NIOSSL
import Testing

@testable import Server

/// One client's connection to the server's handler on an `EmbeddedChannel`: the test sends the client's bytes as
/// reads and takes what the server wrote. Replies are built on the channel's own loop, so that every reply is there
/// as soon as the read that asked for it returns.
final class EmbeddedNBDConnection {
    let channel: EmbeddedChannel

    /// Connects, and checks the server's greeting: its magic, `IHAVEOPT` and the fixed newstyle and no zeroes flags.
    /// The server's reply budget, shared with no other connection unless given.
    init(
        exports: [ServedExport], tls: NIOSSLContext? = nil,
        limits: ServerLimits = ServerLimits(handshakeTimeout: nil, idleTimeout: nil, replyStallTimeout: nil),
        budget: ReplyBudget? = nil
    ) throws {
        let handler = NBDConnectionHandler(
            exports: exports, workers: .eventLoop, tls: tls, limits: limits,
            budget: budget ?? ReplyBudget(bytes: limits.serverBudget))
        channel = EmbeddedChannel(handler: handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 10809)).wait()
        var greeting = try received()
        let fields = greeting.readMultipleIntegers(as: (UInt64, UInt64, UInt16).self)
        #expect(fields.map { [$0.0, $0.1, UInt64($0.2)] } == [NBDNumbers.handshakeMagic, NBDNumbers.optionMagic, 3])
        #expect(greeting.readableBytes == 0)
    }

    /// A connection whose client has sent its flags: options follow.
    static func negotiating(
        _ exports: [ServedExport], tls: NIOSSLContext? = nil,
        flags: UInt32 = NBDNumbers.fixedNewstyle | NBDNumbers.noZeroes, budget: ReplyBudget? = nil
    ) throws -> EmbeddedNBDConnection {
        let connection = try EmbeddedNBDConnection(exports: exports, tls: tls, budget: budget)
        try connection.send(ClientMessages.flags(flags))
        return connection
    }

    /// A connection in the transmission phase, `export` chosen with `NBD_OPT_GO` after `options` were sent.
    static func transmitting(
        _ exports: [ServedExport], export: String, options: [ByteBuffer] = [], budget: ReplyBudget? = nil
    ) throws -> EmbeddedNBDConnection {
        let connection = try negotiating(exports, budget: budget)
        for option in options { try connection.send(option) }
        try connection.send(ClientMessages.option(NBDNumbers.Option.go, ClientMessages.exportChoice(export)))
        let replies = try connection.optionReplies()
        #expect(replies.last == OptionReply(option: NBDNumbers.Option.go, type: NBDNumbers.Reply.ack))
        return connection
    }

    /// Sends the client's bytes in one read.
    func send(_ bytes: ByteBuffer) throws {
        try channel.writeInbound(bytes)
    }

    /// Every byte the server wrote since the last call.
    func received() throws -> ByteBuffer {
        var all = ByteBuffer()
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { all.writeImmutableBuffer(buffer) }
        return all
    }

    /// The option replies the server wrote since the last call.
    func optionReplies() throws -> [OptionReply] {
        var bytes = try received()
        return try bytes.readOptionReplies()
    }

    /// The server has not closed the connection.
    var isOpen: Bool { channel.isActive }
}
