import NIOCore

/// An option reply, decoded: every field the server wrote, so that a test compares all of them.
struct OptionReply: Equatable {
    var magic = NBDNumbers.optionReplyMagic
    var option: UInt32
    var type: UInt32
    var payload: [UInt8] = []
}

/// A simple reply's header, decoded.
struct SimpleReply: Equatable {
    var magic = NBDNumbers.simpleReplyMagic
    var error: UInt32
    var cookie: UInt64
}

/// A structured reply chunk, decoded.
struct ReplyChunk: Equatable {
    var magic = NBDNumbers.structuredReplyMagic
    var flags: UInt16
    var type: UInt16
    var cookie: UInt64
    var payload: [UInt8]
}

/// A reply's bytes did not decode.
struct UndecodableReply: Error, CustomStringConvertible {
    var description: String
}

extension ByteBuffer {
    /// Decodes the buffer as option replies to its last byte.
    mutating func readOptionReplies() throws -> [OptionReply] {
        var replies: [OptionReply] = []
        while readableBytes > 0 {
            guard let (magic, option, type, length) = readMultipleIntegers(as: (UInt64, UInt32, UInt32, UInt32).self),
                let payload = readBytes(length: Int(length))
            else { throw UndecodableReply(description: "a truncated option reply: \(readableBytes) bytes left") }
            replies.append(OptionReply(magic: magic, option: option, type: type, payload: payload))
        }
        return replies
    }

    mutating func readSimpleReply() throws -> SimpleReply {
        guard let (magic, error, cookie) = readMultipleIntegers(as: (UInt32, UInt32, UInt64).self) else {
            throw UndecodableReply(description: "a truncated simple reply: \(readableBytes) bytes")
        }
        return SimpleReply(magic: magic, error: error, cookie: cookie)
    }

    mutating func readChunk() throws -> ReplyChunk {
        guard
            let (magic, flags, type, cookie, length) = readMultipleIntegers(
                as: (UInt32, UInt16, UInt16, UInt64, UInt32).self),
            let payload = readBytes(length: Int(length))
        else { throw UndecodableReply(description: "a truncated reply chunk: \(readableBytes) bytes") }
        return ReplyChunk(magic: magic, flags: flags, type: type, cookie: cookie, payload: payload)
    }
}

/// Big-endian bytes of the numbers given, to spell out payloads.
enum Bytes {
    static func of<T: FixedWidthInteger>(_ values: T...) -> [UInt8] {
        var buffer = ByteBuffer()
        for value in values { buffer.writeInteger(value) }
        return Array(buffer.readableBytesView)
    }

    /// A 32-bit length, then the string's bytes.
    static func string(_ text: String) -> [UInt8] {
        of(UInt32(text.utf8.count)) + Array(text.utf8)
    }
}
