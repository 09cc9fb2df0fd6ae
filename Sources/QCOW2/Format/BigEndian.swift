/// Big-endian integers in byte buffers, bounds-checked: qcow2 stores everything big-endian, and a
/// corrupt or hostile image must produce an error, never an out-of-bounds read.
struct BigEndianReader {
    let bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }

    func u8(at offset: Int) throws(QCOW2Error) -> UInt8 {
        guard offset >= 0, offset < bytes.count else { throw truncated(offset, 1) }  // no sums: no overflow
        return bytes[offset]
    }

    func u32(at offset: Int) throws(QCOW2Error) -> UInt32 {
        guard offset >= 0, offset <= bytes.count - 4 else { throw truncated(offset, 4) }
        return (0..<4).reduce(UInt32(0)) { $0 << 8 | UInt32(bytes[offset + $1]) }
    }

    func u64(at offset: Int) throws(QCOW2Error) -> UInt64 {
        guard offset >= 0, offset <= bytes.count - 8 else { throw truncated(offset, 8) }
        return (0..<8).reduce(UInt64(0)) { $0 << 8 | UInt64(bytes[offset + $1]) }
    }

    func slice(at offset: Int, count: Int) throws(QCOW2Error) -> ArraySlice<UInt8> {
        guard offset >= 0, count >= 0, offset <= bytes.count - count else { throw truncated(offset, count) }
        return bytes[offset..<offset + count]
    }

    private func truncated(_ offset: Int, _ count: Int) -> QCOW2Error {
        QCOW2Error(.corrupt, "the header is truncated: \(count) bytes at offset \(offset) run past its end")
    }
}

/// Appends big-endian integers to a byte array.
struct BigEndianWriter {
    var bytes: [UInt8] = []

    mutating func u8(_ value: UInt8) { bytes.append(value) }
    mutating func u32(_ value: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift)))
        }
    }
    mutating func u64(_ value: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
        }
    }
    mutating func pad(to alignment: Int) { while bytes.count % alignment != 0 { bytes.append(0) } }

    static func put(_ value: UInt64, into buffer: UnsafeMutableRawBufferPointer, at offset: Int) {
        buffer.storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt64.self)
    }
}
