import Engine

/// What `backup --check-source` found on one disk: the blocks where the point would have differed from the disk (the
/// checkpoint's dirty bitmap missed their changes), all copied into the point before it was committed.
public struct SourceCheckReport: Sendable, Codable, Equatable {
    /// A range of the disk, in bytes.
    public struct Range: Sendable, Codable, Equatable {
        public var offset: UInt64
        public var length: UInt64
    }

    /// The disk's target (`vda`).
    public var disk: String
    /// How many blocks of ``Engine/ContentDigest/blockSize`` bytes the bitmap missed.
    public var differingBlocks: UInt64
    /// How many bytes they hold.
    public var differingBytes: UInt64
    /// Where they are, merged into runs.
    public var ranges: [Range]

    init(disk: String, missed: [Swift.Range<UInt64>]) {
        self.disk = disk
        let blockSize = UInt64(ContentDigest.blockSize)
        ranges = missed.map { Range(offset: $0.lowerBound, length: $0.upperBound - $0.lowerBound) }
        differingBytes = ranges.reduce(0) { $0 + $1.length }
        differingBlocks = missed.reduce(0) { count, range in
            count + (range.upperBound - 1) / blockSize - range.lowerBound / blockSize + 1
        }
    }

    /// The ranges as a short text: the first few, and how many more.
    var rangeSummary: String {
        let shown = ranges.prefix(4).map { "\($0.offset)+\($0.length)" }
        return shown.joined(separator: ", ") + (ranges.count > 4 ? " and \(ranges.count - 4) more" : "")
    }

    enum CodingKeys: String, CodingKey {
        case disk, ranges
        case differingBlocks = "differing_blocks"
        case differingBytes = "differing_bytes"
    }
}
