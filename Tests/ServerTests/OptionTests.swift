import NIOCore
import Testing

@testable import Server

/// Every option's replies and errors, byte for byte, on a server without TLS.
@Suite struct OptionTests {
    let exports: TestExports

    init() throws {
        exports = try TestExports()
    }

    /// INFO and GO's two information replies for an export of `size` bytes: the export's size and transmission
    /// flags, then the block sizes (1, 4096, 32 MiB); then the acknowledgement.
    static func exportInfo(_ option: UInt32, size: UInt64) -> [OptionReply] {
        [
            OptionReply(
                option: option, type: NBDNumbers.Reply.info,
                payload: Bytes.of(UInt16(0)) + Bytes.of(size) + Bytes.of(NBDNumbers.transmissionFlags)),
            OptionReply(
                option: option, type: NBDNumbers.Reply.info,
                payload: Bytes.of(UInt16(3)) + Bytes.of(UInt32(1), UInt32(4096), UInt32(32 << 20))),
            OptionReply(option: option, type: NBDNumbers.Reply.ack),
        ]
    }

    @Test("LIST names every export, sorted, then acknowledges; with data it is invalid")
    func list() throws {
        let connection = try EmbeddedNBDConnection.negotiating([
            try exports.written("zeta", size: 512), try exports.written("alpha", size: 512),
        ])
        try connection.send(ClientMessages.option(NBDNumbers.Option.list))
        #expect(
            try connection.optionReplies() == [
                OptionReply(option: 3, type: NBDNumbers.Reply.server, payload: Bytes.string("alpha")),
                OptionReply(option: 3, type: NBDNumbers.Reply.server, payload: Bytes.string("zeta")),
                OptionReply(option: 3, type: NBDNumbers.Reply.ack),
            ])
        try connection.send(ClientMessages.option(NBDNumbers.Option.list, ByteBuffer(bytes: [0])))
        #expect(try connection.optionReplies() == [OptionReply(option: 3, type: NBDNumbers.Reply.invalid)])
    }

    @Test("STRUCTURED_REPLY is acknowledged; with data it is invalid")
    func structuredReply() throws {
        let connection = try EmbeddedNBDConnection.negotiating([try exports.written("disk", size: 512)])
        try connection.send(ClientMessages.option(NBDNumbers.Option.structuredReply, ByteBuffer(bytes: [1, 2])))
        #expect(try connection.optionReplies() == [OptionReply(option: 8, type: NBDNumbers.Reply.invalid)])
        try connection.send(ClientMessages.option(NBDNumbers.Option.structuredReply))
        #expect(try connection.optionReplies() == [OptionReply(option: 8, type: NBDNumbers.Reply.ack)])
    }

    @Test("INFO describes an export and negotiation goes on; the empty name is the only export")
    func info() throws {
        let connection = try EmbeddedNBDConnection.negotiating([try exports.written("disk", size: 12288)])
        for name in ["disk", ""] {
            try connection.send(
                ClientMessages.option(NBDNumbers.Option.info, ClientMessages.exportChoice(name, requests: [3])))
            #expect(try connection.optionReplies() == Self.exportInfo(6, size: 12288))
        }
        try connection.send(ClientMessages.option(NBDNumbers.Option.structuredReply))
        #expect(try connection.optionReplies() == [OptionReply(option: 8, type: NBDNumbers.Reply.ack)])
    }

    @Test("INFO and GO of an unknown export get ERR_UNKNOWN and negotiation goes on; GO of a known one transmits")
    func unknownExport() throws {
        let connection = try EmbeddedNBDConnection.negotiating([
            try exports.written("disk", size: 4096), try exports.written("other", size: 512),
        ])
        for option in [NBDNumbers.Option.info, NBDNumbers.Option.go] {
            for name in ["missing", ""] {  // the empty name is no export when there are two
                try connection.send(ClientMessages.option(option, ClientMessages.exportChoice(name)))
                #expect(
                    try connection.optionReplies() == [
                        OptionReply(option: option, type: NBDNumbers.Reply.unknownExport)
                    ])
            }
        }
        try connection.send(ClientMessages.option(NBDNumbers.Option.go, ClientMessages.exportChoice("disk")))
        #expect(try connection.optionReplies() == Self.exportInfo(7, size: 4096))
        try connection.send(ClientMessages.request(NBDNumbers.Command.read, cookie: 9, offset: 0, length: 4))
        var reply = try connection.received()
        #expect(try reply.readSimpleReply() == SimpleReply(error: 0, cookie: 9))
        #expect(reply.readBytes(length: reply.readableBytes) == (0..<4).map(TestExports.pattern))
    }

    @Test("INFO and GO whose data does not add up are invalid: a name longer than sent, requests not matching")
    func malformedExportChoice() throws {
        let connection = try EmbeddedNBDConnection.negotiating([try exports.written("disk", size: 4096)])
        var requestsMissing = ClientMessages.exportChoice("disk")
        requestsMissing.setInteger(UInt16(2), at: requestsMissing.writerIndex - 2)
        var nameTooLong = ClientMessages.string("disk")
        nameTooLong.setInteger(UInt32(40), at: 0)
        for data in [requestsMissing, nameTooLong, ByteBuffer()] {
            try connection.send(ClientMessages.option(NBDNumbers.Option.go, data))
            #expect(try connection.optionReplies() == [OptionReply(option: 7, type: NBDNumbers.Reply.invalid)])
        }
        #expect(connection.isOpen)
    }

    @Test("an unknown option gets ERR_UNSUP, and STARTTLS without TLS gets ERR_POLICY; negotiation goes on")
    func unsupportedOptions() throws {
        let connection = try EmbeddedNBDConnection.negotiating([try exports.written("disk", size: 4096)])
        try connection.send(ClientMessages.option(4, ByteBuffer(bytes: [1, 2, 3])))
        #expect(try connection.optionReplies() == [OptionReply(option: 4, type: NBDNumbers.Reply.unsupported)])
        try connection.send(ClientMessages.option(NBDNumbers.Option.startTLS))
        #expect(try connection.optionReplies() == [OptionReply(option: 5, type: NBDNumbers.Reply.policy)])
        try connection.send(ClientMessages.option(NBDNumbers.Option.structuredReply))
        #expect(try connection.optionReplies() == [OptionReply(option: 8, type: NBDNumbers.Reply.ack)])
    }
}
