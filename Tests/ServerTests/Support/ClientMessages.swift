import NIOCore

/// The bytes an NBD client sends, built by hand.
enum ClientMessages {
    static func flags(_ flags: UInt32) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(flags)
        return buffer
    }

    /// An option with `data`; `length` overrides the length written (to claim more than is sent).
    static func option(_ code: UInt32, _ data: ByteBuffer = ByteBuffer(), length: UInt32? = nil) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(NBDNumbers.optionMagic)
        buffer.writeInteger(code)
        buffer.writeInteger(length ?? UInt32(data.readableBytes))
        buffer.writeImmutableBuffer(data)
        return buffer
    }

    /// A 32-bit length, then the string.
    static func string(_ text: String) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(text.utf8.count))
        buffer.writeString(text)
        return buffer
    }

    /// The data of `NBD_OPT_INFO` and `NBD_OPT_GO`: the export's name, then information requests.
    static func exportChoice(_ name: String, requests: [UInt16] = []) -> ByteBuffer {
        var buffer = string(name)
        buffer.writeInteger(UInt16(requests.count))
        for request in requests { buffer.writeInteger(request) }
        return buffer
    }

    /// The data of the meta context options: the export's name, then the queries.
    static func metaContexts(_ name: String, _ queries: [String]) -> ByteBuffer {
        var buffer = string(name)
        buffer.writeInteger(UInt32(queries.count))
        for query in queries { buffer.writeImmutableBuffer(string(query)) }
        return buffer
    }

    static func request(
        _ command: UInt16, flags: UInt16 = 0, cookie: UInt64, offset: UInt64, length: UInt32,
        magic: UInt32 = NBDNumbers.requestMagic
    ) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(magic)
        buffer.writeInteger(flags)
        buffer.writeInteger(command)
        buffer.writeInteger(cookie)
        buffer.writeInteger(offset)
        buffer.writeInteger(length)
        return buffer
    }
}

extension ByteBuffer {
    /// These bytes followed by `other`'s.
    static func + (lhs: ByteBuffer, rhs: ByteBuffer) -> ByteBuffer {
        var joined = lhs
        joined.writeImmutableBuffer(rhs)
        return joined
    }
}
