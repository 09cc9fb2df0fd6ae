import NBDProtocol
import NIOCore

/// One reply to an option in the handshake: its type and data.
struct OptionReply: Sendable {
    /// `NBD_REP_*`.
    var type: UInt32
    /// The reply's data.
    var data: ByteBuffer

    /// Whether it is an error reply (bit 31 set).
    var isError: Bool { type & 0x8000_0000 != 0 }

    /// The name of the reply type, as the protocol document writes it.
    var name: String { OptionReply.name(of: type) }

    static func name(of type: UInt32) -> String {
        switch NBDWire.Reply(rawValue: type) {
        case .ack: "NBD_REP_ACK"
        case .server: "NBD_REP_SERVER"
        case .info: "NBD_REP_INFO"
        case .metaContext: "NBD_REP_META_CONTEXT"
        case .unsupported: "NBD_REP_ERR_UNSUP"
        case .policy: "NBD_REP_ERR_POLICY"
        case .invalid: "NBD_REP_ERR_INVALID"
        case .platform: "NBD_REP_ERR_PLATFORM"
        case .tlsRequired: "NBD_REP_ERR_TLS_REQD"
        case .unknownExport: "NBD_REP_ERR_UNKNOWN"
        case .shutdown: "NBD_REP_ERR_SHUTDOWN"
        case .blockSizeRequired: "NBD_REP_ERR_BLOCK_SIZE_REQD"
        case .tooBig: "NBD_REP_ERR_TOO_BIG"
        case nil: "reply type 0x" + String(type, radix: 16)
        }
    }
}

/// The handshake as the probe drives it: the greeting, the client's flags, options and their replies.
extension ProbeConnection {
    /// The longest option reply the probe reads (the protocol bounds strings at 4 KiB; a list of them is longer).
    static let maximumOptionReply: UInt32 = 16 << 20

    /// Reads the server's greeting of the fixed newstyle handshake and returns its handshake flags; throws when it is
    /// not `NBDMAGIC`, `IHAVEOPT` (an oldstyle server sends a size there).
    func readGreeting() async throws(ProbeError) -> UInt16 {
        var greeting = try await receive(18)
        let magic = greeting.readInteger(as: UInt64.self)
        let option = greeting.readInteger(as: UInt64.self)
        guard magic == NBDWire.handshakeMagic else {
            throw ProbeError(.protocolViolation, "the server's first 8 bytes are not NBDMAGIC")
        }
        guard option == NBDWire.optionMagic else {
            throw ProbeError(
                .protocolViolation, "the server speaks the oldstyle handshake (no IHAVEOPT after NBDMAGIC)")
        }
        return greeting.readInteger(as: UInt16.self) ?? 0
    }

    /// Sends the client's flags (`NBD_FLAG_C_FIXED_NEWSTYLE`, `NBD_FLAG_C_NO_ZEROES`).
    func sendClientFlags(_ flags: UInt32) async throws(ProbeError) {
        var bytes = ByteBuffer()
        bytes.writeInteger(flags)
        try await send(bytes)
    }

    /// Sends option `option` with `data`.
    func sendOption(_ option: UInt32, data: ByteBuffer = ByteBuffer()) async throws(ProbeError) {
        var bytes = ByteBuffer()
        bytes.writeInteger(NBDWire.optionMagic)
        bytes.writeInteger(option)
        bytes.writeInteger(UInt32(data.readableBytes))
        var data = data
        bytes.writeBuffer(&data)
        try await send(bytes)
    }

    /// Reads one reply to `option`; throws when its magic or the option it answers is wrong, or it is too long.
    func readOptionReply(to option: UInt32) async throws(ProbeError) -> OptionReply {
        var header = try await receive(20)
        let magic = header.readInteger(as: UInt64.self)
        let answered = header.readInteger(as: UInt32.self) ?? 0
        let type = header.readInteger(as: UInt32.self) ?? 0
        let length = header.readInteger(as: UInt32.self) ?? 0
        guard magic == NBDWire.optionReplyMagic else {
            throw ProbeError(.protocolViolation, "an option reply without the reply magic 0x3e889045565a9")
        }
        guard answered == option else {
            throw ProbeError(.protocolViolation, "a reply to option \(answered) where option \(option) was asked")
        }
        guard length <= Self.maximumOptionReply else {
            throw ProbeError(.protocolViolation, "an option reply of \(length) bytes, more than anything it can hold")
        }
        return OptionReply(type: type, data: length == 0 ? ByteBuffer() : try await receive(Int(length)))
    }

    /// Sends `option` and reads its replies up to and including the first that ends it (`NBD_REP_ACK` or an error);
    /// the replies before are `NBD_REP_SERVER`, `NBD_REP_INFO` or `NBD_REP_META_CONTEXT`. At most 100,000 replies.
    func exchange(_ option: UInt32, data: ByteBuffer = ByteBuffer()) async throws(ProbeError) -> [OptionReply] {
        try await sendOption(option, data: data)
        var replies: [OptionReply] = []
        var held = 0
        while replies.count < 100_000 {
            let reply = try await readOptionReply(to: option)
            // All the replies to one option together are bounded as one reply is.
            held += reply.data.readableBytes
            guard held <= Self.maximumOptionReply else {
                throw ProbeError(.protocolViolation, "replies to option \(option) of more than 16 MiB in all")
            }
            replies.append(reply)
            if reply.isError || reply.type == NBDWire.Reply.ack.rawValue { return replies }
        }
        throw ProbeError(.protocolViolation, "more than 100,000 replies to option \(option) without an end")
    }
}

// MARK: Option data

extension ByteBuffer {
    /// A 32-bit length, then `text`'s UTF-8 bytes: how the protocol writes a name.
    mutating func writeNBDString(_ text: String) {
        writeInteger(UInt32(text.utf8.count))
        writeString(text)
    }

    /// The data of `NBD_OPT_INFO` and `NBD_OPT_GO`: the export's name, then the information requests.
    static func infoRequest(export: String, requests: [UInt16]) -> ByteBuffer {
        var data = ByteBuffer()
        data.writeNBDString(export)
        data.writeInteger(UInt16(requests.count))
        for request in requests { data.writeInteger(request) }
        return data
    }

    /// The data of `NBD_OPT_LIST_META_CONTEXT` and `NBD_OPT_SET_META_CONTEXT`: the export's name and the queries.
    static func metaContextRequest(export: String, queries: [String]) -> ByteBuffer {
        var data = ByteBuffer()
        data.writeNBDString(export)
        data.writeInteger(UInt32(queries.count))
        for query in queries { data.writeNBDString(query) }
        return data
    }
}
