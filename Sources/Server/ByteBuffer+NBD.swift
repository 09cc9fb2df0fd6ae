import NBDProtocol
import NIOCore
import QCOW2

extension ByteBuffer {
    /// Writes an option reply: magic, option, reply type, length, then `body`.
    mutating func writeOptionReply(_ option: UInt32, _ reply: NBDWire.Reply, body: ByteBuffer? = nil) {
        writeInteger(NBDWire.optionReplyMagic)
        writeInteger(option)
        writeInteger(reply.rawValue)
        writeInteger(UInt32(body?.readableBytes ?? 0))
        if var body { writeBuffer(&body) }
    }

    /// Writes a structured reply chunk's header; its payload of `length` bytes follows.
    mutating func writeChunkHeader(_ type: NBDWire.ChunkType, done: Bool, cookie: UInt64, length: Int) {
        writeInteger(NBDWire.structuredReplyMagic)
        writeInteger(done ? NBDWire.chunkDone : 0)
        writeInteger(type.rawValue)
        writeInteger(cookie)
        writeInteger(UInt32(length))
    }

    /// Writes a simple reply: magic, error, cookie (the data of a successful read follows).
    mutating func writeSimpleReply(error: UInt32, cookie: UInt64) {
        writeInteger(NBDWire.simpleReplyMagic)
        writeInteger(error)
        writeInteger(cookie)
    }

    /// Reads a string of `length` bytes that must be UTF-8.
    mutating func readNBDString(length: Int) -> String? {
        guard length <= readableBytes, let bytes = readBytes(length: length) else { return nil }
        return String(validating: bytes, as: UTF8.self)
    }

    /// Writes `count` bytes of `export` from `offset`, read straight into the buffer.
    mutating func writeChainBytes(of export: ServedExport, at offset: UInt64, count: Int) throws {
        try writeWithUnsafeMutableBytes(minimumWritableBytes: count) { buffer in
            let target = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count])
            try export.chain.read(into: target, at: offset)
            return count
        }
    }
}
