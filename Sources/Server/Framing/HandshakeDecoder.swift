import NBDProtocol
import NIOCore

/// Frames the handshake phase: the client's flags, then option after option. An option header is checked before
/// its data is awaited, so that a length beyond ``NBDWire/maximumOption`` fails at once instead of being buffered.
struct HandshakeDecoder: NIOSingleStepByteToMessageDecoder {
    typealias InboundOut = HandshakeMessage

    /// Magic, option code, data length.
    private static let optionHeader = 16
    private var flagsReceived = false

    mutating func decode(buffer: inout ByteBuffer) throws -> HandshakeMessage? {
        guard flagsReceived else {
            guard let flags = buffer.readInteger(as: UInt32.self) else { return nil }
            flagsReceived = true
            return .clientFlags(flags)
        }
        guard
            let (magic, code, length) = buffer.getMultipleIntegers(
                at: buffer.readerIndex, as: (UInt64, UInt32, UInt32).self)
        else { return nil }
        guard magic == NBDWire.optionMagic else { throw FramingError(.wrongOptionMagic, magic) }
        guard length <= NBDWire.maximumOption else { throw FramingError(.optionTooLong, UInt64(length)) }
        guard buffer.readableBytes >= Self.optionHeader + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: Self.optionHeader)
        return .option(code: code, data: buffer.readSlice(length: Int(length))!)
    }

    mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> HandshakeMessage? {
        try decode(buffer: &buffer)
    }
}
