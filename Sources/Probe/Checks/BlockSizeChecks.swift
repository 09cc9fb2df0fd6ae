import NBDProtocol

/// `NBD_INFO_BLOCK_SIZE`: the minimum, preferred and maximum sizes are sane, and requests of each size are served.
enum BlockSizeChecks {
    static let all: [ProbeCheck] = [
        ProbeCheck("blocksize.sane", sane),
        ProbeCheck("blocksize.requests", requests),
    ]

    /// The minimum and preferred sizes are powers of two, ordered (the preferred at least 512), the minimum at most
    /// 64 KiB, the preferred at most 32 MiB, and the maximum a multiple of the minimum (unless it says "no limit").
    static func sane(_ context: ProbeContext) async throws(ProbeError) -> Verdict {
        guard let (minimum, preferred, maximum) = context.export.blockSizes else {
            return .skip("the server sent no NBD_INFO_BLOCK_SIZE")
        }
        let sizes = "minimum \(minimum), preferred \(preferred), maximum \(maximum)"
        let problems = [
            minimum == 0 || minimum & (minimum - 1) != 0 ? "the minimum is not a power of two" : nil,
            minimum > 64 << 10 ? "the minimum is over 64 KiB" : nil,
            preferred == 0 || preferred & (preferred - 1) != 0 ? "the preferred size is not a power of two" : nil,
            preferred < max(minimum, 512) ? "the preferred size is below the minimum or 512" : nil,
            preferred > 32 << 20 ? "the preferred size is over 32 MiB" : nil,
            maximum < preferred ? "the maximum is below the preferred size" : nil,
            maximum != .max && minimum > 0 && maximum % minimum != 0
                ? "the maximum is not a multiple of the minimum" : nil,
        ].compactMap { $0 }
        guard problems.isEmpty else {
            return .fail("NBD_INFO_BLOCK_SIZE (\(sizes)): " + problems.joined(separator: "; "))
        }
        let size = context.export.size
        let note = size % UInt64(minimum) == 0 ? "" : "; the export's size \(size) is not a multiple of the minimum"
        return .pass(sizes + note)
    }

    /// A read at offset 0 of each advertised size (capped at the export's size and 32 MiB) succeeds with every byte;
    /// a length not a multiple of the minimum is reported, not judged: the server may refuse it (`EINVAL`) or close.
    static func requests(_ context: ProbeContext) async throws(ProbeError) -> Verdict {
        guard let (minimum, preferred, maximum) = context.export.blockSizes else {
            return .skip("the server sent no NBD_INFO_BLOCK_SIZE")
        }
        let export = context.export
        var lengths: [(name: String, length: UInt32)] = []
        for (name, size) in [("minimum", minimum), ("preferred", preferred), ("maximum", maximum)] {
            let length = UInt32(export.alignedDown(min(UInt64(size), UInt64(export.longestRead))))
            if length > 0, !lengths.contains(where: { $0.length == length }) { lengths.append((name, length)) }
        }
        guard !lengths.isEmpty else { return .skip("the export (\(export.size) bytes) is shorter than a block") }
        let failure = try await context.withConnection { (connection, export) throws(ProbeError) -> String? in
            for (name, length) in lengths {
                if case .refused(_, let summary) = try await connection.read(
                    offset: 0, length: length, on: export)
                {
                    return
                        "a read of the \(name) block size (offset 0, length \(length)) failed with \(summary); a server MUST serve what it advertises"
                }
            }
            return nil
        }
        if let failure { return .fail(failure) }
        let served = lengths.map { "\($0.name) \($0.length)" }.joined(separator: ", ")
        return .pass("read at offset 0: \(served); " + (try await unaligned(context)))
    }

    /// What the server does with a read whose length is not a multiple of the minimum block size.
    private static func unaligned(_ context: ProbeContext) async throws(ProbeError) -> String {
        let minimum = context.export.minimumBlock
        guard minimum > 1 else { return "every length is a multiple of the minimum 1" }
        guard context.export.size > 0 else { return "no unaligned read of an empty export" }
        return try await context.withConnection { (connection, export) async throws(ProbeError) -> String in
            do throws(ProbeError) {
                switch try await connection.read(offset: 0, length: 1, on: export) {
                case .data: return "an unaligned read (offset 0, length 1) was served"
                case .refused(let code, _):
                    return "an unaligned read (offset 0, length 1) was refused with \(NBDWire.Error.describe(code))"
                }
            } catch  where error.code == .closed {
                return "the server closed the connection on an unaligned read (offset 0, length 1), as it may"
            }
        }
    }
}
