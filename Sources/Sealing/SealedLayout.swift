/// Where things are in a sealed object of one frame size, and how its sealed size and its plaintext size map to one
/// another (see ``SealedStore`` for the format). Every computation is checked: a size no plaintext gives, or one so
/// large that an offset would overflow, is nil, never a trap.
public struct SealedLayout: Sendable, Equatable {
    /// The bytes of the header in the clear before the first frame.
    public static let headerSize = 64
    /// The bytes of the authentication tag after each frame's ciphertext.
    public static let tagSize = 16
    /// The frame sizes a header may name, as powers of two: 4 KiB to 1 MiB.
    public static let frameShifts: ClosedRange<UInt8> = 12...20
    /// The frame size new objects are written with: 64 KiB, a qcow2 cluster.
    public static let defaultFrameShift: UInt8 = 16

    /// The frame size as a power of two.
    public let frameShift: UInt8

    /// The layout of frames of 2^`frameShift` bytes; nil for a shift outside ``frameShifts``.
    public init?(frameShift: UInt8) {
        guard Self.frameShifts.contains(frameShift) else { return nil }
        self.frameShift = frameShift
    }

    /// Plaintext bytes per frame (the last frame may have fewer).
    public var frameSize: UInt64 { 1 << UInt64(frameShift) }
    /// Sealed bytes per full frame: its ciphertext and its tag.
    var sealedFrameSize: UInt64 { frameSize + UInt64(Self.tagSize) }

    /// How many frames an object of `plaintextSize` bytes has: at least one (an empty object is one empty frame).
    public func frameCount(plaintextSize: UInt64) -> UInt64 {
        let full = plaintextSize >> UInt64(frameShift)
        let rest = plaintextSize & (frameSize - 1)
        return rest == 0 && full > 0 ? full : full + 1
    }

    /// Where frame `index` starts in the sealed object; nil when that overflows.
    public func sealedOffset(ofFrame index: UInt64) -> UInt64? {
        let (product, overflow) = index.multipliedReportingOverflow(by: sealedFrameSize)
        guard !overflow else { return nil }
        let (offset, carry) = product.addingReportingOverflow(UInt64(Self.headerSize))
        return carry ? nil : offset
    }

    /// The sealed size of an object of `plaintextSize` bytes; nil when it does not fit in 64 bits.
    public func sealedSize(plaintextSize: UInt64) -> UInt64? {
        let frames = frameCount(plaintextSize: plaintextSize)
        let (tags, overflow) = frames.multipliedReportingOverflow(by: UInt64(Self.tagSize))
        guard !overflow else { return nil }
        let (body, carry) = plaintextSize.addingReportingOverflow(tags)
        guard !carry else { return nil }
        let (size, last) = body.addingReportingOverflow(UInt64(Self.headerSize))
        return last ? nil : size
    }

    /// The plaintext size of a sealed object of `sealedSize` bytes; nil when no plaintext size gives `sealedSize`
    /// (shorter than a header and one empty frame, or a last frame shorter than its tag, or an empty frame after
    /// full ones).
    public func plaintextSize(sealedSize: UInt64) -> UInt64? {
        guard sealedSize >= UInt64(Self.headerSize + Self.tagSize) else { return nil }
        let body = sealedSize - UInt64(Self.headerSize)
        let full = body / sealedFrameSize
        let rest = body % sealedFrameSize
        if rest == 0 { return full << UInt64(frameShift) }
        // A shorter last frame has its tag and at least one byte, unless it is the only frame.
        guard rest > UInt64(Self.tagSize) || (rest == UInt64(Self.tagSize) && full == 0) else { return nil }
        return (full << UInt64(frameShift)) + rest - UInt64(Self.tagSize)
    }

    /// The plaintext bytes frame `index` of an object of `plaintextSize` bytes holds.
    func plaintextLength(ofFrame index: UInt64, plaintextSize: UInt64) -> Int {
        let start = index << UInt64(frameShift)
        return Int(min(frameSize, plaintextSize - start))
    }
}
