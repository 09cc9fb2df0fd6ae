import NBDProtocol

/// The commands besides reads, each sent only where a transmission flag advertises it. `FLUSH` and `CACHE` change no
/// data and always run; `WRITE`, `WRITE_ZEROES`, `FAST_ZERO`, `TRIM` and the multi-connection write only with
/// `--write`. A read-only export is sent one write, which it must refuse without changing anything.
enum CommandChecks {
    static let all: [ProbeCheck] = [
        ProbeCheck("command.flush", flush),
        ProbeCheck("command.cache", cache),
        ProbeCheck("command.fast-zero", fastZero),
        ProbeCheck("command.trim", trim),
        ProbeCheck("command.write-zeroes", writeZeroes),
        ProbeCheck("command.write", write),
        ProbeCheck("command.multi-conn", multiConn),
    ]

    /// Why a check that writes under `flag` (named `flagName`) does not run on this export or in this run; nil when
    /// it runs.
    static func writeSkip(_ context: ProbeContext, _ flag: UInt16, _ flagName: String) -> Verdict? {
        if !context.export.has(flag) { return .skip("\(flagName) not advertised") }
        if context.export.has(NBDWire.readOnly) { return .skip("the export is read-only (NBD_FLAG_READ_ONLY)") }
        if !context.options.write { return .skip("needs --write") }
        return nil
    }

    // MARK: Commands that change no data

    /// `NBD_CMD_FLUSH` (offset and length 0), where `NBD_FLAG_SEND_FLUSH` is advertised, succeeds.
    static func flush(_ context: ProbeContext) async throws(ProbeError) -> Verdict {
        guard context.export.has(NBDWire.sendFlush) else { return .skip("NBD_FLAG_SEND_FLUSH not advertised") }
        try await context.withConnection { (connection, export) throws(ProbeError) in
            try await connection.flush(on: export)
        }
        return .pass()
    }

    /// `NBD_CMD_CACHE` of a range inside the export, where `NBD_FLAG_SEND_CACHE` is advertised, gets a reply, and the
    /// range reads the same after.
    static func cache(_ context: ProbeContext) async throws(ProbeError) -> Verdict {
        guard context.export.has(NBDWire.sendCache) else { return .skip("NBD_FLAG_SEND_CACHE not advertised") }
        guard let range = ScratchRange(context.export) else { return .skip("the export holds no whole block") }
        return try await context.withConnection { (connection, export) throws(ProbeError) -> Verdict in
            let before = try await connection.read(range, on: export)
            // A cache request may fail (a server may advertise it and always answer EINVAL), but changes nothing.
            let reply = try await connection.answer(to: range.request(.cache), on: export)
            let after = try await connection.read(range, on: export)
            guard after == before else {
                return .fail(
                    "after NBD_CMD_CACHE of \(range), the range reads differently \(firstDifference(after, before))")
            }
            let answer = reply.errorCode.map { "refused with \(reply.errorSummary($0)) (a hint may be)" } ?? "cached"
            return .pass("\(range) \(answer); it reads the same after")
        }
    }

    // MARK: Writes

    /// A writable export stores a write and gives it back (with and without `FUA` where `NBD_FLAG_SEND_FUA` is
    /// advertised); a read-only export refuses one (with `EPERM`, the protocol recommends) and keeps its data.
    static func write(_ context: ProbeContext) async throws(ProbeError) -> Verdict {
        guard let range = ScratchRange(context.export) else { return .skip("the export holds no whole block") }
        if context.export.has(NBDWire.readOnly) { return try await refusedWrite(context, range) }
        guard context.options.write else { return .skip("needs --write") }
        return try await context.withConnection { (connection, export) throws(ProbeError) -> Verdict in
            var flagSets: [UInt16] = [0]
            if export.has(NBDWire.sendFUA) { flagSets.append(NBDWire.forceUnitAccess) }
            for flags in flagSets {
                let pattern = range.pattern()
                let request = range.request(.write, flags: flags, payload: pattern)
                if let refused = try await connection.writeScratch(pattern, over: range, flags: flags, on: export) {
                    return refused
                }
                let back = try await connection.read(range, on: export)
                guard back == pattern else {
                    return .fail(
                        "\(request.summary) succeeded but the range reads back differently \(firstDifference(back, pattern))"
                    )
                }
            }
            return .pass("\(range) written and read back\(flagSets.count > 1 ? ", with and without FUA" : "")")
        }
    }

    /// A write to an export whose flags say read-only fails, and the range reads the same after; the error should be
    /// `EPERM`. Should the server store the write anyway, what was there is written back.
    static func refusedWrite(_ context: ProbeContext, _ range: ScratchRange) async throws(ProbeError) -> Verdict {
        try await context.withConnection { (connection, export) throws(ProbeError) -> Verdict in
            let before = try await connection.read(range, on: export)
            let request = range.request(.write, payload: before.map { ~$0 })
            let reply = try await connection.answer(to: request, on: export)
            let after = try await connection.read(range, on: export)
            let answer = reply.errorCode.map { "failed with \(reply.errorSummary($0))" } ?? "succeeded"
            if after != before {
                _ = try? await connection.answer(to: range.request(.write, payload: before), on: export)
                return .fail(
                    "\(request.summary) to a read-only export \(answer) and changed its data \(firstDifference(after, before)); NBD_FLAG_READ_ONLY exports refuse writes"
                )
            }
            guard let code = reply.errorCode else {
                return .fail(
                    "\(request.summary) to a read-only export succeeded (though nothing changed); NBD_FLAG_READ_ONLY exports fail writes"
                )
            }
            guard code == NBDWire.Error.notPermitted.rawValue else {
                // The protocol only recommends EPERM (qemu-nbd answers EINVAL): worth saying, not a failure.
                return .pass(
                    "a write refused with \(NBDWire.Error.describe(code)), where the protocol recommends EPERM (1); \(range) unchanged"
                )
            }
            return .pass("a write refused with EPERM; \(range) unchanged")
        }
    }

    /// Where `NBD_FLAG_CAN_MULTI_CONN` is advertised, a write on one connection, once flushed (or written with FUA),
    /// reads back on another connection, which read the range before (so a cache of its own would show the old bytes).
    static func multiConn(_ context: ProbeContext) async throws(ProbeError) -> Verdict {
        if let skip = writeSkip(context, NBDWire.canMultiConn, "NBD_FLAG_CAN_MULTI_CONN") { return skip }
        guard let range = ScratchRange(context.export) else { return .skip("the export holds no whole block") }
        // Two connections: a writer and a reader are what the rule is about, and a server that serves fewer clients
        // than --connections asks (qemu-nbd -e 2) can still be checked.
        return try await context.withConnections(2) { (connections) throws(ProbeError) -> Verdict in
            for (connection, export) in connections { _ = try await connection.read(range, on: export) }
            let (writer, writerExport) = connections[0]
            // The protocol makes a write visible everywhere once a flush, or the write itself with FUA, is answered.
            let pattern = range.pattern()
            let fua = !writerExport.has(NBDWire.sendFlush) && writerExport.has(NBDWire.sendFUA)
            let flags = fua ? NBDWire.forceUnitAccess : 0
            if let skip = try await writer.prepare(pattern, over: range, flags: flags, on: writerExport) {
                return skip
            }
            let flushed = writerExport.has(NBDWire.sendFlush)
            if flushed { try await writer.flush(on: writerExport) }
            let how = flushed ? " and flushed" : fua ? " with FUA" : ""
            for (index, (reader, export)) in connections.enumerated().dropFirst() {
                let seen = try await reader.read(range, on: export)
                guard seen == pattern else {
                    return .fail(
                        "with NBD_FLAG_CAN_MULTI_CONN, connection \(index + 1) reads \(range) differently \(firstDifference(seen, pattern)) after connection 1 wrote\(how) it"
                    )
                }
            }
            return .pass(
                "written\(how) on one connection, read back on another"
            )
        }
    }
}
