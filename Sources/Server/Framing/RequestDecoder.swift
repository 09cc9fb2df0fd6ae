import NBDProtocol
import NIOCore

/// Frames the transmission phase: request headers, each 28 bytes. A write's payload is skipped as it arrives, never
/// buffered whole: the write is refused anyway, and a payload longer than ``NBDWire/maximumRequest`` is an error.
struct RequestDecoder: NIOSingleStepByteToMessageDecoder {
    typealias InboundOut = NBDRequest

    private static let header = 28
    /// The bytes still to come of a refused write's payload.
    private var skipping = 0

    mutating func decode(buffer: inout ByteBuffer) throws -> NBDRequest? {
        if skipping > 0 {
            let skipped = min(skipping, buffer.readableBytes)
            buffer.moveReaderIndex(forwardBy: skipped)
            skipping -= skipped
            guard skipping == 0 else { return nil }
        }
        guard
            let (magic, flags, type, cookie, offset, length) = buffer.getMultipleIntegers(
                at: buffer.readerIndex, as: (UInt32, UInt16, UInt16, UInt64, UInt64, UInt32).self)
        else { return nil }
        guard magic == NBDWire.requestMagic else { throw FramingError(.wrongRequestMagic, UInt64(magic)) }
        let request = NBDRequest(flags: flags, type: type, cookie: cookie, offset: offset, length: length)
        if request.command == .write {
            guard length <= NBDWire.maximumRequest else { throw FramingError(.writeTooLong, UInt64(length)) }
            skipping = Int(length)
        }
        buffer.moveReaderIndex(forwardBy: Self.header)
        return request
    }

    mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> NBDRequest? {
        try decode(buffer: &buffer)
    }
}
