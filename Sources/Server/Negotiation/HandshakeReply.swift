import NBDProtocol
import NIOCore

/// A reply of the handshake phase, as the protocol frames it.
enum HandshakeReply: Equatable {
    /// An option reply: magic, option, reply type, length, then the body.
    case option(UInt32, NBDWire.Reply, body: ByteBuffer? = nil)
    /// The answer to `NBD_OPT_EXPORT_NAME`: the export's size and transmission flags, then 124 zero bytes unless the
    /// client asked for none.
    case exportName(size: UInt64, flags: UInt16, zeroes: Bool)
}

extension ByteBuffer {
    /// Writes `reply` as the protocol frames it.
    mutating func writeHandshakeReply(_ reply: HandshakeReply) {
        switch reply {
        case .option(let option, let type, let body):
            writeOptionReply(option, type, body: body)
        case .exportName(let size, let flags, let zeroes):
            writeInteger(size)
            writeInteger(flags)
            if zeroes { writeRepeatingByte(0, count: 124) }
        }
    }
}
