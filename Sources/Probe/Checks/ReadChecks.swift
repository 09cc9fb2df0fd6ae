import NBDProtocol

/// `NBD_CMD_READ`: the first and last bytes, unaligned ranges, the largest request, reads past the end and of no
/// length, and the same bytes on every connection.
enum ReadChecks {
    static let all: [ProbeCheck] = [
        ProbeCheck("read.first", first),
        ProbeCheck("read.last-byte", lastByte),
        ProbeCheck("read.unaligned", unaligned),
        ProbeCheck("read.max-request", maxRequest),
        ProbeCheck("read.past-end", pastEnd),
        ProbeCheck("read.zero-length", zeroLength),
        ProbeCheck("read.connections-agree", ReadAgreement.connectionsAgree),
    ]

    /// A read of the preferred block size (4 KiB by default) at offset 0 succeeds with every byte.
    static func first(_ context: ProbeContext) async throws(ProbeError) -> Verdict {
        let export = context.export
        let length = export.readLength(about: UInt64(export.blockSizes?.preferred ?? 4096))
        guard length > 0 else { return .skip(tooShort(export)) }
        return try await context.withConnection { (connection, export) throws(ProbeError) -> Verdict in
            let outcome = try await connection.read(offset: 0, length: length, on: export)
            if let failure = failure(of: outcome, offset: 0, length: length) { return .fail(failure) }
            return .pass("\(counted(Int(length), "byte")) at offset 0")
        }
    }

    /// A read of the minimum block size (1 byte by default) that ends at the export's end succeeds. Whether a longer
    /// read ending there gives the same last byte is noted: the protocol does not say reads are stable.
    static func lastByte(_ context: ProbeContext) async throws(ProbeError) -> Verdict {
        let export = context.export
        let block = export.minimumBlock
        guard export.size >= block else { return .skip(tooShort(export)) }
        guard export.size % block == 0 else {
            return .skip(
                "the export's size \(export.size) is not a multiple of the minimum block size \(block): its last byte cannot be read alone"
            )
        }
        let longer = UInt64(export.readLength(about: 4096))
        return try await context.withConnection { (connection, export) throws(ProbeError) -> Verdict in
            var lastBytes: [UInt8] = []
            for length in Set([block, longer]).sorted() {
                let offset = export.size - length
                let outcome = try await connection.read(offset: offset, length: UInt32(length), on: export)
                if let failure = failure(of: outcome, offset: offset, length: UInt32(length)) { return .fail(failure) }
                if case .data(let bytes) = outcome, let last = bytes.last { lastBytes.append(last) }
            }
            let read = "\(counted(Int(block), "byte")) at offset \(export.size - block)"
            guard Set(lastBytes).count == 1 else {
                return .pass(
                    "\(read); the last byte reads 0x\(hex(lastBytes[0])) alone but 0x\(hex(lastBytes[1])) in a read of \(longer)"
                )
            }
            return .pass(read)
        }
    }

    /// Reads at odd offsets and of odd lengths succeed, across 512- and 4096-byte boundaries and at the end; whether
    /// they give the bytes of aligned reads around them is noted. Only when the minimum block size is 1: otherwise the
    /// client must not send them.
    static func unaligned(_ context: ProbeContext) async throws(ProbeError) -> Verdict {
        let export = context.export
        guard export.minimumBlock == 1 else {
            return .skip("the minimum block size is \(export.minimumBlock): a client must not send unaligned requests")
        }
        guard export.size >= 2 else { return .skip(tooShort(export)) }
        let window = UInt64(export.readLength(about: 8192))
        guard window >= 2 else { return .skip("the maximum payload (\(window)) leaves no room for an unaligned read") }
        let windows = Set([0, export.size - window]).sorted()
        var ranges: [(offset: UInt64, length: UInt32)] = [(1, UInt32(min(3, window - 1)))]
        for boundary: UInt64 in [512, 4096] where window >= boundary + 2 { ranges.append((boundary - 1, 3)) }
        if export.size >= 5 { ranges.append((export.size - 4, 3)) }
        return try await context.withConnection { (connection, export) throws(ProbeError) -> Verdict in
            var around: [UInt64: [UInt8]] = [:]
            for start in windows {
                let outcome = try await connection.read(offset: start, length: UInt32(window), on: export)
                if let failure = failure(of: outcome, offset: start, length: UInt32(window)) { return .fail(failure) }
                if case .data(let bytes) = outcome { around[start] = bytes }
            }
            var differing: [String] = []
            for (offset, length) in ranges {
                let outcome = try await connection.read(offset: offset, length: length, on: export)
                if let failure = failure(of: outcome, offset: offset, length: length) { return .fail(failure) }
                guard case .data(let bytes) = outcome,
                    let start = windows.last(where: { $0 <= offset && offset + UInt64(length) <= $0 + window }),
                    let aligned = around[start]
                else { continue }
                let from = Int(offset - start)
                if Array(aligned[from..<(from + Int(length))]) != bytes { differing.append("\(offset)") }
            }
            let read = ranges.map { "\($0.length) at \($0.offset)" }.joined(separator: ", ")
            guard differing.isEmpty else {
                return .pass(
                    "\(read); at \(differing.joined(separator: ", ")) the bytes differ from an aligned read of the same range"
                )
            }
            return .pass(read)
        }
    }

    /// A read of the maximum payload (advertised, or the protocol's default of 32 MiB; within the export) ending at
    /// the export's end succeeds, and its start reads as a short read of the same offset does.
    static func maxRequest(_ context: ProbeContext) async throws(ProbeError) -> Verdict {
        let export = context.export
        let length = export.longestRead
        guard length > 0 else { return .skip(tooShort(export)) }
        let offset = export.alignedDown(export.size - UInt64(length))
        let short = export.readLength(about: 4096)
        return try await context.withConnection { (connection, export) throws(ProbeError) -> Verdict in
            let outcome = try await connection.read(offset: offset, length: length, on: export)
            if let failure = failure(of: outcome, offset: offset, length: length) { return .fail(failure) }
            let start = try await connection.read(offset: offset, length: short, on: export)
            if let failure = failure(of: start, offset: offset, length: short) { return .fail(failure) }
            guard case .data(let long) = outcome, case .data(let bytes) = start, Array(long.prefix(Int(short))) == bytes
            else {
                return .fail(
                    "the first \(short) bytes of a read of \(length) at offset \(offset) differ from a read of \(short) there"
                )
            }
            let source = export.blockSizes.map {
                $0.maximum == .max ? "no limit advertised" : "advertised \($0.maximum)"
            }
            return .pass("\(counted(Int(length), "byte")) at offset \(offset) (\(source ?? "the default"))")
        }
    }

    /// A read running past the end, and one starting at the end, are refused with `EINVAL`; the connection then still
    /// reads. A server may also close the connection (the client broke a MUST).
    static func pastEnd(_ context: ProbeContext) async throws(ProbeError) -> Verdict {
        let export = context.export
        let block = export.minimumBlock
        let length = UInt32(clamping: block * max(2, 4096 / block))
        var reads: [(offset: UInt64, what: String)] = [(export.alignedUp(export.size), "starting at the end")]
        if export.size > 0 { reads.insert((export.alignedDown(export.size - 1), "running past the end"), at: 0) }
        var notes: [String] = []
        for (offset, what) in reads {
            let request = "a read \(what) (offset \(offset), length \(length), size \(export.size))"
            let (failure, note) = try await context.withConnection {
                (connection, export) async throws(ProbeError) -> (String?, String?) in
                let outcome: ReadOutcome
                do throws(ProbeError) {
                    outcome = try await connection.read(offset: offset, length: length, on: export)
                } catch  where error.code == .closed {
                    return (nil, "the server closed the connection on \(request)")
                }
                switch outcome {
                case .data: return ("\(request) succeeded; the protocol says EINVAL", nil)
                case .refused(NBDWire.Error.invalid.rawValue, _): break
                case .refused(NBDWire.Error.overflow.rawValue, _):
                    return (
                        "\(request) failed with EOVERFLOW; a read past the end is EINVAL, EOVERFLOW is for DF", nil
                    )
                case .refused(_, let summary):
                    return ("\(request) failed with \(summary); the protocol says EINVAL", nil)
                }
                do throws(ProbeError) {
                    return (try await readsAfter(request, on: connection, export), nil)
                } catch  where error.code == .closed {
                    return (nil, "the server closed the connection after refusing \(request) with EINVAL")
                }
            }
            if let failure { return .fail(failure) }
            if let note { notes.append(note) }
        }
        return .pass(notes.isEmpty ? "EINVAL, and the connection reads on" : notes.joined(separator: "; "))
    }

    /// A read of length 0 gets a reply (the protocol leaves which one to the server, which should not disconnect),
    /// and the connection then still reads.
    static func zeroLength(_ context: ProbeContext) async throws(ProbeError) -> Verdict {
        try await context.withConnection { (connection, export) throws(ProbeError) -> Verdict in
            let outcome: ReadOutcome
            do throws(ProbeError) {
                outcome = try await connection.read(offset: 0, length: 0, on: export)
            } catch  where error.code == .closed {
                return .fail("the server closed the connection on a read of length 0; it SHOULD NOT disconnect")
            }
            let answer =
                switch outcome {
                case .data: "succeeded"
                case .refused(let code, _): "failed with \(NBDWire.Error.describe(code))"
                }
            do throws(ProbeError) {
                if let failure = try await readsAfter("a read of length 0", on: connection, export) {
                    return .fail(failure)
                }
            } catch  where error.code == .closed {
                return .fail("the server closed the connection after a read of length 0; it SHOULD NOT disconnect")
            }
            return .pass("a read of length 0 \(answer); the connection reads on")
        }
    }

    /// Why a read of the first block on `connection` fails after `request`; nil when it succeeds (or the export is
    /// shorter than a block). Throws when the server closed the connection, which the caller judges.
    private static func readsAfter(_ request: String, on connection: ProbeConnection, _ export: NegotiatedExport)
        async throws(ProbeError) -> String?
    {
        let length = export.readLength(about: 4096)
        guard length > 0 else { return nil }
        let outcome: ReadOutcome
        do throws(ProbeError) {
            outcome = try await connection.read(offset: 0, length: length, on: export)
        } catch  where error.code != .closed {
            return "after \(request), a read of the first \(length) bytes went wrong: \(error.message)"
        }
        guard let failure = failure(of: outcome, offset: 0, length: length) else { return nil }
        return "after \(request), " + failure
    }

    /// Why a read that should have succeeded is a failure of the check; nil when it succeeded.
    static func failure(of outcome: ReadOutcome, offset: UInt64, length: UInt32) -> String? {
        guard case .refused(_, let summary) = outcome else { return nil }
        return
            "a read inside the export (offset \(offset), length \(length)) failed with \(summary)"
    }

    /// `byte` in hexadecimal.
    static func hex(_ byte: UInt8) -> String { String(byte, radix: 16) }

    /// Why there is nothing to read.
    static func tooShort(_ export: NegotiatedExport) -> String {
        "the export (\(export.size) bytes) is shorter than what the check reads (minimum block \(export.minimumBlock))"
    }
}
