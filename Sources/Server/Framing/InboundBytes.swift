import NIOCore

/// The bytes a connection has read and not yet framed. The connection decodes one message at a time, only when it
/// can act on it: a request whose reply does not fit in the budget stops decoding, and reading, until it does.
struct InboundBytes {
    private var buffer: ByteBuffer?

    /// The bytes not yet framed.
    var readableBytes: Int { buffer?.readableBytes ?? 0 }

    mutating func append(_ incoming: ByteBuffer) {
        guard var buffer, buffer.readableBytes > 0 else {
            self.buffer = incoming
            return
        }
        self.buffer = nil  // the only reference while it grows: no copy
        var incoming = incoming
        buffer.writeBuffer(&incoming)
        self.buffer = buffer
    }

    /// The next message `decoder` frames, or nil when not all of it is here yet.
    mutating func next<Decoder: NIOSingleStepByteToMessageDecoder>(
        _ decoder: inout Decoder
    ) throws -> Decoder.InboundOut? {
        guard var bytes = buffer, bytes.readableBytes > 0 else { return nil }
        // Taken out so that this is its only reference: decoding moves its reader index, never copies it.
        buffer = nil
        defer {
            if bytes.readableBytes > 0 { buffer = bytes }
        }
        guard let message = try decoder.decode(buffer: &bytes) else {
            bytes.discardReadBytes()
            return nil
        }
        return message
    }

    /// Forgets every byte: the connection is closing.
    mutating func removeAll() {
        buffer = nil
    }
}
