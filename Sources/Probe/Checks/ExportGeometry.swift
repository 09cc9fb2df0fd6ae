/// The sizes a check's requests must respect: the minimum block size every offset and length is a multiple of, and
/// the longest read the probe sends.
extension NegotiatedExport {
    /// The protocol's default maximum payload (2^25 bytes), which every server should serve; the probe reads no more
    /// at once.
    static let defaultMaximumPayload: UInt64 = 32 << 20

    /// The minimum block size the server asked for; 1 when it sent none.
    var minimumBlock: UInt64 { UInt64(max(blockSizes?.minimum ?? 1, 1)) }

    /// `value` rounded down to a multiple of the minimum block size.
    func alignedDown(_ value: UInt64) -> UInt64 { value - value % minimumBlock }

    /// `value` rounded up to a multiple of the minimum block size.
    func alignedUp(_ value: UInt64) -> UInt64 { alignedDown(value + minimumBlock - 1) }

    /// The longest read the probe sends: the maximum payload advertised (the default when none is, or when it is
    /// unlimited), at most the default, within the export, aligned down; 0 when the export is shorter than a block.
    var longestRead: UInt32 {
        let limit = min(Self.defaultMaximumPayload, UInt64(blockSizes?.maximum ?? UInt32.max), size)
        return UInt32(alignedDown(limit))
    }

    /// A read length of about `wanted` bytes: aligned down, at most ``longestRead``, but at least one block when the
    /// export holds one.
    func readLength(about wanted: UInt64) -> UInt32 {
        let longest = UInt64(longestRead)
        guard longest > 0 else { return 0 }
        return UInt32(max(alignedDown(min(wanted, longest)), min(minimumBlock, longest)))
    }

    /// `count` aligned offsets spread evenly from the start of the export to its end, each with `length` bytes after
    /// it inside the export; the last one as near the end as alignment allows.
    func spreadOffsets(_ count: Int, length: UInt64) -> [UInt64] {
        guard count > 0, length <= size else { return [] }
        let last = alignedDown(size - length)
        var offsets: [UInt64] = []
        for index in 0..<count {
            let offset = index == count - 1 ? last : alignedDown(last / UInt64(max(count - 1, 1)) * UInt64(index))
            if offsets.last != offset { offsets.append(offset) }
        }
        return offsets
    }
}

/// `count` and `noun`, plural unless `count` is 1 ("1 byte", "3 ranges").
func counted(_ count: Int, _ noun: String) -> String { "\(count) \(noun)\(count == 1 ? "" : "s")" }
