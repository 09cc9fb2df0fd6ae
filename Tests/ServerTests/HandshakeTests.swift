import NIOCore
import Testing

@testable import Server

/// The fixed newstyle handshake's framing: client flags first, then options whose headers are checked before
/// their data is awaited.
@Suite struct HandshakeTests {
    let exports: TestExports

    init() throws {
        exports = try TestExports()
    }

    @Test("flags without fixed newstyle, or with a flag the server does not know, end the connection")
    func unacceptableFlags() throws {
        let disk = try exports.written("disk", size: 4096)
        for flags: UInt32 in [0, NBDNumbers.noZeroes, NBDNumbers.fixedNewstyle | 4] {
            let connection = try EmbeddedNBDConnection.negotiating([disk], flags: flags)
            #expect(!connection.isOpen, "flags \(flags)")
            #expect(try connection.received().readableBytes == 0)
        }
    }

    @Test("an option sent before the flags is read as flags, which are wrong: the connection ends, nothing replied")
    func optionBeforeFlags() throws {
        let connection = try EmbeddedNBDConnection(exports: [try exports.written("disk", size: 4096)])
        try connection.send(ClientMessages.option(NBDNumbers.Option.list))
        #expect(!connection.isOpen)
        #expect(try connection.received().readableBytes == 0)
    }

    @Test("flags and an option in one read, and an option split over three reads, are both answered")
    func framingAcrossReads() throws {
        let disk = try exports.written("disk", size: 4096)
        let connection = try EmbeddedNBDConnection(exports: [disk])
        try connection.send(ClientMessages.flags(3) + ClientMessages.option(NBDNumbers.Option.structuredReply))
        #expect(try connection.optionReplies() == [OptionReply(option: 8, type: NBDNumbers.Reply.ack)])
        let list = ClientMessages.option(NBDNumbers.Option.list)
        for range in [0..<3, 3..<15, 15..<16] {
            try connection.send(list.getSlice(at: range.lowerBound, length: range.count)!)
            if range.upperBound < 16 { #expect(try connection.received().readableBytes == 0) }
        }
        #expect(
            try connection.optionReplies() == [
                OptionReply(option: 3, type: NBDNumbers.Reply.server, payload: Bytes.string("disk")),
                OptionReply(option: 3, type: NBDNumbers.Reply.ack),
            ])
    }

    @Test("an option longer than 64 KiB ends the connection at its header, before its data is awaited")
    func oversizedOption() throws {
        let connection = try EmbeddedNBDConnection.negotiating([try exports.written("disk", size: 4096)])
        try connection.send(ClientMessages.option(NBDNumbers.Option.list, length: 64 << 10 + 1))
        #expect(!connection.isOpen)
        #expect(try connection.received().readableBytes == 0)
    }

    @Test("an option of exactly 64 KiB is read whole and answered")
    func largestOption() throws {
        let connection = try EmbeddedNBDConnection.negotiating([try exports.written("disk", size: 4096)])
        try connection.send(ClientMessages.option(99, ByteBuffer(repeating: 7, count: 64 << 10)))
        #expect(try connection.optionReplies() == [OptionReply(option: 99, type: NBDNumbers.Reply.unsupported)])
        #expect(connection.isOpen)
    }

    @Test("an option header without IHAVEOPT ends the connection")
    func wrongOptionMagic() throws {
        let connection = try EmbeddedNBDConnection.negotiating([try exports.written("disk", size: 4096)])
        var option = ClientMessages.option(NBDNumbers.Option.list)
        option.setInteger(UInt64(0x4948_4156_454f_5055), at: 0)
        try connection.send(option)
        #expect(!connection.isOpen)
        #expect(try connection.received().readableBytes == 0)
    }

    @Test("EXPORT_NAME: size and flags, then 124 zero bytes unless the client asked for none")
    func exportName() throws {
        let disk = try exports.written("disk", size: 8192)
        for (flags, padding) in [(NBDNumbers.fixedNewstyle, 124), (NBDNumbers.fixedNewstyle | NBDNumbers.noZeroes, 0)] {
            let connection = try EmbeddedNBDConnection.negotiating([disk], flags: flags)
            try connection.send(ClientMessages.option(NBDNumbers.Option.exportName, ByteBuffer(string: "disk")))
            var reply = try connection.received()
            #expect(reply.readInteger(as: UInt64.self) == 8192)
            #expect(reply.readInteger(as: UInt16.self) == NBDNumbers.transmissionFlags)
            #expect(reply.readBytes(length: reply.readableBytes) == [UInt8](repeating: 0, count: padding))
            try connection.send(ClientMessages.request(NBDNumbers.Command.flush, cookie: 5, offset: 0, length: 0))
            var flushed = try connection.received()
            #expect(try flushed.readSimpleReply() == SimpleReply(error: 0, cookie: 5))
        }
    }

    @Test("EXPORT_NAME of an export that does not exist ends the connection: it cannot be refused")
    func exportNameUnknown() throws {
        let connection = try EmbeddedNBDConnection.negotiating([try exports.written("disk", size: 4096)])
        try connection.send(ClientMessages.option(NBDNumbers.Option.exportName, ByteBuffer(string: "other")))
        #expect(!connection.isOpen)
        #expect(try connection.received().readableBytes == 0)
    }

    @Test("ABORT is acknowledged, then the connection closes; bytes after it are ignored")
    func abort() throws {
        let connection = try EmbeddedNBDConnection.negotiating([try exports.written("disk", size: 4096)])
        try connection.send(
            ClientMessages.option(NBDNumbers.Option.abort) + ClientMessages.option(NBDNumbers.Option.list))
        #expect(try connection.optionReplies() == [OptionReply(option: 2, type: NBDNumbers.Reply.ack)])
        #expect(!connection.isOpen)
    }
}
