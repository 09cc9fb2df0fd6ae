import NIOCore
import Testing

@testable import Server

/// The transmission phase's framing: request headers checked, split and joined reads, refused writes' payloads
/// skipped, and the replies of each request, byte for byte.
@Suite struct RequestFramingTests {
    let exports: TestExports

    init() throws {
        exports = try TestExports()
    }

    static func read(cookie: UInt64, offset: UInt64, length: UInt32) -> ByteBuffer {
        ClientMessages.request(NBDNumbers.Command.read, cookie: cookie, offset: offset, length: length)
    }

    /// A successful simple read reply's bytes: header, then the pattern.
    static func readReply(cookie: UInt64, offset: Int, length: Int) -> ByteBuffer {
        var reply = ByteBuffer()
        reply.writeMultipleIntegers(NBDNumbers.simpleReplyMagic, UInt32(0), cookie)
        reply.writeBytes((offset..<offset + length).map(TestExports.pattern))
        return reply
    }

    static func errorReply(_ error: UInt32, cookie: UInt64) -> ByteBuffer {
        var reply = ByteBuffer()
        reply.writeMultipleIntegers(NBDNumbers.simpleReplyMagic, error, cookie)
        return reply
    }

    @Test("a request header without the request magic ends the connection")
    func wrongMagic() throws {
        let connection = try EmbeddedNBDConnection.transmitting(
            [try exports.written("disk", size: 4096)], export: "disk")
        try connection.send(
            ClientMessages.request(NBDNumbers.Command.read, cookie: 1, offset: 0, length: 512, magic: 0x2560_9514))
        #expect(!connection.isOpen)
        #expect(try connection.received().readableBytes == 0)
    }

    @Test("a read beyond the export is EINVAL, a read over 32 MiB inside it EOVERFLOW; the connection goes on")
    func oversizedReads() throws {
        let large = try exports.sparse("large", size: 64 << 20)
        let connection = try EmbeddedNBDConnection.transmitting([large], export: "large")
        try connection.send(Self.read(cookie: 1, offset: 0, length: 32 << 20 + 1))
        #expect(try connection.received() == Self.errorReply(NBDNumbers.Errno.overflow, cookie: 1))
        try connection.send(Self.read(cookie: 2, offset: 48 << 20, length: 16 << 20 + 1))
        #expect(try connection.received() == Self.errorReply(NBDNumbers.Errno.invalid, cookie: 2))
        try connection.send(Self.read(cookie: 3, offset: 0, length: 0))
        #expect(try connection.received() == Self.errorReply(NBDNumbers.Errno.invalid, cookie: 3))
        try connection.send(Self.read(cookie: 4, offset: 64 << 20 - 8, length: 8))
        var zeros = Self.errorReply(0, cookie: 4)
        zeros.writeRepeatingByte(0, count: 8)
        #expect(try connection.received() == zeros)
    }

    @Test("a request split over several reads is answered once, when its last byte arrives")
    func splitRequest() throws {
        let connection = try EmbeddedNBDConnection.transmitting(
            [try exports.written("disk", size: 4096)], export: "disk")
        let request = Self.read(cookie: 7, offset: 1000, length: 300)
        for range in [0..<1, 1..<6, 6..<27] {
            try connection.send(request.getSlice(at: range.lowerBound, length: range.count)!)
            #expect(try connection.received().readableBytes == 0)
        }
        try connection.send(request.getSlice(at: 27, length: 1)!)
        #expect(try connection.received() == Self.readReply(cookie: 7, offset: 1000, length: 300))
    }

    @Test("several requests in one read are answered in order, the last one split with the next read")
    func joinedRequests() throws {
        let connection = try EmbeddedNBDConnection.transmitting(
            [try exports.written("disk", size: 4096)], export: "disk")
        let flush = ClientMessages.request(NBDNumbers.Command.flush, cookie: 2, offset: 0, length: 0)
        let third = Self.read(cookie: 3, offset: 4000, length: 96)
        try connection.send(Self.read(cookie: 1, offset: 0, length: 10) + flush + third.getSlice(at: 0, length: 10)!)
        #expect(
            try connection.received()
                == Self.readReply(cookie: 1, offset: 0, length: 10) + Self.errorReply(0, cookie: 2))
        try connection.send(third.getSlice(at: 10, length: 18)!)
        #expect(try connection.received() == Self.readReply(cookie: 3, offset: 4000, length: 96))
    }

    @Test("a write is refused with EPERM and its payload skipped, even split; one over 32 MiB ends the connection")
    func writes() throws {
        let connection = try EmbeddedNBDConnection.transmitting(
            [try exports.written("disk", size: 4096)], export: "disk")
        let write = ClientMessages.request(NBDNumbers.Command.write, cookie: 5, offset: 0, length: 100)
        // The payload looks like a request: it must be skipped, not framed.
        let payload = Self.read(cookie: 66, offset: 0, length: 1) + ByteBuffer(repeating: 0x25, count: 72)
        try connection.send(write + payload.getSlice(at: 0, length: 40)!)
        #expect(try connection.received() == Self.errorReply(NBDNumbers.Errno.notPermitted, cookie: 5))
        try connection.send(payload.getSlice(at: 40, length: 60)! + Self.read(cookie: 6, offset: 8, length: 8))
        #expect(try connection.received() == Self.readReply(cookie: 6, offset: 8, length: 8))
        try connection.send(
            ClientMessages.request(NBDNumbers.Command.write, cookie: 7, offset: 0, length: 32 << 20 + 1))
        #expect(!connection.isOpen)
        #expect(try connection.received().readableBytes == 0)
    }

    @Test("an unknown command is EINVAL; DISC closes the connection and nothing after it is answered")
    func unknownCommandAndDisconnect() throws {
        let connection = try EmbeddedNBDConnection.transmitting(
            [try exports.written("disk", size: 4096)], export: "disk")
        try connection.send(ClientMessages.request(42, cookie: 8, offset: 0, length: 0))
        #expect(try connection.received() == Self.errorReply(NBDNumbers.Errno.invalid, cookie: 8))
        try connection.send(
            ClientMessages.request(NBDNumbers.Command.disconnect, cookie: 9, offset: 0, length: 0)
                + Self.read(cookie: 10, offset: 0, length: 8))
        #expect(!connection.isOpen)
        #expect(try connection.received().readableBytes == 0)
    }

    @Test("structured reads: a data chunk of the bytes, a hole chunk where the image reads as zeros")
    func structuredReads() throws {
        let structured = ClientMessages.option(NBDNumbers.Option.structuredReply)
        let disk = try exports.written("disk", size: 4096)
        let connection = try EmbeddedNBDConnection.transmitting([disk], export: "disk", options: [structured])
        try connection.send(Self.read(cookie: 11, offset: 100, length: 50))
        var reply = try connection.received()
        #expect(
            try reply.readChunk()
                == ReplyChunk(
                    flags: NBDNumbers.Chunk.done, type: NBDNumbers.Chunk.offsetData, cookie: 11,
                    payload: Bytes.of(UInt64(100)) + (100..<150).map(TestExports.pattern)))
        #expect(reply.readableBytes == 0)
        let sparse = try exports.sparse("sparse", size: 1 << 20)
        let holes = try EmbeddedNBDConnection.transmitting([sparse], export: "sparse", options: [structured])
        try holes.send(Self.read(cookie: 12, offset: 4096, length: 8192))
        var hole = try holes.received()
        #expect(
            try hole.readChunk()
                == ReplyChunk(
                    flags: NBDNumbers.Chunk.done, type: NBDNumbers.Chunk.offsetHole, cookie: 12,
                    payload: Bytes.of(UInt64(4096)) + Bytes.of(UInt32(8192))))
    }

    @Test("while the channel is not writable nothing is framed; writable again, it goes on")
    func notWritable() throws {
        let connection = try EmbeddedNBDConnection.transmitting(
            [try exports.written("disk", size: 4096)], export: "disk")
        connection.channel.isWritable = false
        try connection.send(Self.read(cookie: 1, offset: 0, length: 4))
        #expect(try connection.received().readableBytes == 0)
        connection.channel.isWritable = true
        connection.channel.pipeline.fireChannelWritabilityChanged()
        #expect(try connection.received() == Self.readReply(cookie: 1, offset: 0, length: 4))
    }
}
