import NBDProtocol

/// The commands that drop data: `WRITE_ZEROES` (with and without `NO_HOLE`), `FAST_ZERO` and `TRIM`. Zeroing follows
/// a written pattern, so that the zeros read after it come from the command and not from an export that was empty.
extension CommandChecks {
    /// `NBD_CMD_WRITE_ZEROES` over a written range reads back as zeros, with and without `NBD_CMD_FLAG_NO_HOLE`.
    static func writeZeroes(_ context: ProbeContext) async throws(ProbeError) -> Verdict {
        if let skip = writeSkip(context, NBDWire.sendWriteZeroes, "NBD_FLAG_SEND_WRITE_ZEROES") { return skip }
        guard let range = ScratchRange(context.export) else { return .skip("the export holds no whole block") }
        return try await context.withConnection { (connection, export) throws(ProbeError) -> Verdict in
            for flags in [0, NBDWire.noHole] {
                if let skip = try await connection.prepare(range.pattern(), over: range, on: export) {
                    return skip
                }
                let request = range.request(.writeZeroes, flags: flags)
                try await connection.require(
                    request, on: export, "a server advertising NBD_FLAG_SEND_WRITE_ZEROES performs it")
                if let failure = try await zerosCheck(connection, export, range, after: request) { return failure }
            }
            return .pass("\(range) reads back as zeros, with and without NO_HOLE")
        }
    }

    /// `NBD_CMD_WRITE_ZEROES` with `NBD_CMD_FLAG_FAST_ZERO` either succeeds, and the range reads as zeros, or fails
    /// at once with `ENOTSUP`: the two answers the protocol allows.
    static func fastZero(_ context: ProbeContext) async throws(ProbeError) -> Verdict {
        guard context.export.has(NBDWire.sendWriteZeroes) || !context.export.has(NBDWire.sendFastZero) else {
            return .fail(
                "NBD_FLAG_SEND_FAST_ZERO is advertised without NBD_FLAG_SEND_WRITE_ZEROES; fast zeroing is a flag of NBD_CMD_WRITE_ZEROES"
            )
        }
        if let skip = writeSkip(context, NBDWire.sendFastZero, "NBD_FLAG_SEND_FAST_ZERO") { return skip }
        guard let range = ScratchRange(context.export) else { return .skip("the export holds no whole block") }
        return try await context.withConnection { (connection, export) throws(ProbeError) -> Verdict in
            let pattern = range.pattern()
            if let skip = try await connection.prepare(pattern, over: range, on: export) { return skip }
            let request = range.request(.writeZeroes, flags: NBDWire.fastZero)
            let reply = try await connection.answer(to: request, on: export)
            switch reply.errorCode {
            case nil:
                if let failure = try await zerosCheck(connection, export, range, after: request) { return failure }
                return .pass("zeroed fast; \(range) reads back as zeros")
            case NBDWire.Error.notSupported.rawValue:
                let kept = try await connection.read(range, on: export) == pattern
                return .pass(
                    "refused with ENOTSUP (95): the server cannot zero this range fast"
                        + (kept ? "" : "; it changed the range though (the protocol says it should not)"))
            case let code?:
                return .fail(
                    "\(request.summary) failed with \(reply.errorSummary(code)); a fast zero succeeds or fails with ENOTSUP (95)"
                )
            }
        }
    }

    /// `NBD_CMD_TRIM` of a range succeeds and the range still reads. What it reads is not judged: the protocol
    /// leaves trimmed data unspecified.
    static func trim(_ context: ProbeContext) async throws(ProbeError) -> Verdict {
        if let skip = writeSkip(context, NBDWire.sendTrim, "NBD_FLAG_SEND_TRIM") { return skip }
        guard let range = ScratchRange(context.export) else { return .skip("the export holds no whole block") }
        return try await context.withConnection { (connection, export) throws(ProbeError) -> Verdict in
            try await connection.require(
                range.request(.trim), on: export, "a server advertising NBD_FLAG_SEND_TRIM performs it")
            _ = try await connection.read(range, on: export)
            return .pass("\(range) trimmed and read after (its contents are unspecified)")
        }
    }

    /// A failure when `range` does not read back as zeros after `request` zeroed it; nil when it does.
    private static func zerosCheck(
        _ connection: ProbeConnection, _ export: NegotiatedExport, _ range: ScratchRange, after request: ProbeRequest
    ) async throws(ProbeError) -> Verdict? {
        let back = try await connection.read(range, on: export)
        guard let index = back.firstIndex(where: { $0 != 0 }) else { return nil }
        return .fail(
            "after \(request.summary) succeeded, byte \(index) reads 0x\(String(back[index], radix: 16)), not zero")
    }
}
