import NBDProtocol
import NIOCore

/// What a client sends in the handshake phase, framed but not yet checked: whether the flags are acceptable and the
/// option makes sense is ``Negotiation``'s to say.
enum HandshakeMessage: Equatable {
    /// The client's flags, the first four bytes it sends.
    case clientFlags(UInt32)
    /// An option: its code and its data, at most ``NBDWire/maximumOption`` bytes.
    case option(code: UInt32, data: ByteBuffer)
}
