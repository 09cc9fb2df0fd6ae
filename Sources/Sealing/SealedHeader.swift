import Crypto

/// The 64 bytes in the clear at the start of a sealed object: the magic `PBSEAL01`, the frame size as a power of
/// two, 23 reserved zero bytes, and the object's own random salt. Every frame authenticates all of it.
struct SealedHeader: Sendable {
    static let magic = Array("PBSEAL01".utf8)
    static let saltSize = 32

    let layout: SealedLayout
    /// The header's bytes, exactly as stored.
    let bytes: [UInt8]

    /// The salt: what makes each written object's key its own.
    var salt: ArraySlice<UInt8> { bytes[(SealedLayout.headerSize - Self.saltSize)...] }

    /// A new header for frames of `layout`, with a fresh random salt.
    init(layout: SealedLayout) {
        var bytes = Self.magic + [layout.frameShift]
        bytes += [UInt8](repeating: 0, count: SealedLayout.headerSize - Self.saltSize - bytes.count)
        SymmetricKey(size: .bits256).withUnsafeBytes { bytes += $0 }
        self.layout = layout
        self.bytes = bytes
    }

    /// The header stored as `bytes`, or why it is none: a one-line reason.
    static func parse(_ bytes: [UInt8]) -> Result<SealedHeader, HeaderProblem> {
        guard bytes.count == SealedLayout.headerSize else { return .failure(.short) }
        guard bytes.starts(with: magic) else { return .failure(.magic) }
        let shift = bytes[magic.count]
        guard let layout = SealedLayout(frameShift: shift) else { return .failure(.frameShift(shift)) }
        let reserved = bytes[(magic.count + 1)..<(SealedLayout.headerSize - saltSize)]
        guard reserved.allSatisfy({ $0 == 0 }) else { return .failure(.reserved) }
        return .success(SealedHeader(layout: layout, bytes: bytes))
    }

    private init(layout: SealedLayout, bytes: [UInt8]) {
        self.layout = layout
        self.bytes = bytes
    }

    /// Why stored bytes are not a header.
    enum HeaderProblem: Error {
        case short, magic
        case frameShift(UInt8)
        case reserved

        var reason: String {
            switch self {
            case .short: "it is shorter than the \(SealedLayout.headerSize)-byte header of a sealed object"
            case .magic: "it does not start with the sealed object header PBSEAL01"
            case .frameShift(let shift):
                "its header's frame size 2^\(shift) is outside 2^\(SealedLayout.frameShifts.lowerBound)"
                    + "...2^\(SealedLayout.frameShifts.upperBound)"
            case .reserved: "its header's reserved bytes are not zero"
            }
        }
    }
}
