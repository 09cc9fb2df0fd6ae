import NBDProtocol
import NIOCore

/// The bytes a check writes, zeroes, trims or reads back: one request's worth at a block-aligned offset, within what
/// the export's block sizes allow.
struct ScratchRange: Sendable, CustomStringConvertible {
    var offset: UInt64
    var length: UInt32

    /// Up to `limit` bytes from `offset`: no more than the export holds there or its maximum block size allows,
    /// rounded down to its minimum block; nil when not one whole minimum block fits.
    init?(_ export: NegotiatedExport, offset: UInt64 = 0, upTo limit: UInt32 = 64 << 10) {
        let minimum = UInt64(max(export.blockSizes?.minimum ?? 1, 1))
        let maximum = UInt64(export.blockSizes?.maximum ?? NBDWire.maximumRequest)
        guard offset % minimum == 0, offset < export.size else { return nil }
        var length = min(UInt64(max(limit, 1)), export.size - offset, max(maximum, minimum))
        length -= length % minimum
        if length == 0, minimum <= export.size - offset { length = minimum }
        guard length > 0, length <= UInt64(UInt32.max) else { return nil }
        self.offset = offset
        self.length = UInt32(length)
    }

    var description: String { "\(length) bytes at offset \(offset)" }

    /// A request of `command` for this range.
    func request(_ command: NBDWire.Command, flags: UInt16 = 0, payload: [UInt8]? = nil) -> ProbeRequest {
        ProbeRequest(
            command: command, flags: flags, offset: offset, length: length,
            payload: payload.map { ByteBuffer(bytes: $0) })
    }

    /// Bytes to write over the range: random and never zero, so that they differ from what was there before and from
    /// what zeroing leaves.
    func pattern() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<Int(length)).map { _ in UInt8.random(in: 1...255, using: &generator) }
    }
}

/// Where two byte arrays first differ, for a failure reason: `at byte 17 (0x00 where 0x5a was expected)`.
func firstDifference(_ seen: [UInt8], _ expected: [UInt8]) -> String {
    guard let index = seen.indices.first(where: { $0 < expected.count && seen[$0] != expected[$0] }) else {
        return "in length (\(seen.count) bytes where \(expected.count) were expected)"
    }
    return "at byte \(index) (0x\(hex(seen[index])) where 0x\(hex(expected[index])) was expected)"
}

private func hex(_ byte: UInt8) -> String { (byte < 16 ? "0" : "") + String(byte, radix: 16) }

extension ProbeConnection {
    /// Sends `request` and reads its reply; what it throws (a reply that breaks the framing, a server gone or silent)
    /// names the request.
    func answer(to request: ProbeRequest, on export: NegotiatedExport) async throws(ProbeError) -> ProbeReply {
        do throws(ProbeError) {
            return try await perform(request, on: export)
        } catch {
            throw ProbeError(error.code, "\(request.summary): \(error.message)", cause: error.cause)
        }
    }

    /// Performs `request` and returns its reply; throws a failure saying what the server answered and which `rule`
    /// that breaks when it is an error.
    @discardableResult
    func require(_ request: ProbeRequest, on export: NegotiatedExport, _ rule: String) async throws(ProbeError)
        -> ProbeReply
    {
        let reply = try await answer(to: request, on: export)
        if let code = reply.errorCode {
            throw ProbeError(
                .protocolViolation, "\(request.summary) failed with \(reply.errorSummary(code)); \(rule)")
        }
        return reply
    }

    /// The bytes of `range`, as a read returns them; throws when the read fails or its reply does not cover the range
    /// exactly once.
    func read(_ range: ScratchRange, on export: NegotiatedExport) async throws(ProbeError) -> [UInt8] {
        let reply = try await require(range.request(.read), on: export, "a read inside the export succeeds")
        guard let (bytes, once) = reply.readData(offset: range.offset, length: range.length), once else {
            throw ProbeError(
                .protocolViolation, "the reply to a read of \(range) does not cover it exactly once with its chunks")
        }
        return bytes
    }

    /// `NBD_CMD_FLUSH`; throws when the server refuses it.
    func flush(on export: NegotiatedExport) async throws(ProbeError) {
        try await require(
            ProbeRequest(command: .flush, offset: 0, length: 0), on: export,
            "a server advertising NBD_FLAG_SEND_FLUSH performs NBD_CMD_FLUSH")
    }

    /// Writes `bytes` over `range` with `flags`: nil when the server took them. When it refuses, rewrites what the
    /// range holds: should that succeed, the export takes writes but not new data (nbdkit's sparse-random plugin checks
    /// that writes match what it would read), so it cannot serve as a scratch export and the verdict is a skip saying
    /// so; otherwise it is a failure.
    func writeScratch(_ bytes: [UInt8], over range: ScratchRange, flags: UInt16 = 0, on export: NegotiatedExport)
        async throws(ProbeError) -> Verdict?
    {
        let request = range.request(.write, flags: flags, payload: bytes)
        let reply = try await answer(to: request, on: export)
        guard let code = reply.errorCode else { return nil }
        let held = try await read(range, on: export)
        if try await answer(to: range.request(.write, payload: held), on: export).errorCode == nil {
            return .skip(
                "not a scratch export: new data is refused with \(reply.errorSummary(code)), rewriting what it holds succeeds"
            )
        }
        return .fail(
            "\(request.summary) failed with \(reply.errorSummary(code)); a writable export takes a write inside it")
    }

    /// Writes `bytes` over `range` for a check that needs them there first: nil when the server took them, else a skip
    /// (a failing write is `command.write`'s to judge).
    func prepare(_ bytes: [UInt8], over range: ScratchRange, flags: UInt16 = 0, on export: NegotiatedExport)
        async throws(ProbeError) -> Verdict?
    {
        switch try await writeScratch(bytes, over: range, flags: flags, on: export) {
        case nil: nil
        case .fail(let reason): .skip("cannot write the data it starts from: " + reason)
        case let verdict?: verdict
        }
    }
}

extension ProbeReply {
    /// Error `code`, named, with the server's message when it sent one.
    func errorSummary(_ code: UInt32) -> String {
        for case .error(_, let message, _) in chunks where !message.isEmpty {
            let line = String(message.prefix(120).map { $0.isNewline ? " " : $0 })
            return NBDWire.Error.describe(code) + " (\"" + line + "\")"
        }
        return NBDWire.Error.describe(code)
    }
}
