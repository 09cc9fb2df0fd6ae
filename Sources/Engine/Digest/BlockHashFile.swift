import FileIO
import SystemPackage

/// The file a point keeps a disk's ``BlockHashTable`` in (`<target>.blocks`): a header, then runs of consecutive
/// listed blocks. Read from a repository, so untrusted: every number is checked before use, and the table must give
/// the digest its manifest records before anything relies on it.
///
/// Layout (big-endian): `PBBLOCKS`, version 1 (4 bytes), block size (4), disk size (8), 8 reserved zero bytes; then
/// each run: its first block (8), its block count (4), 4 reserved zero bytes, and that many 32-byte hashes.
public enum BlockHashFile {
    static let magic = Array("PBBLOCKS".utf8)
    static let headerSize = 32
    static let runHeaderSize = 16

    /// The file's bytes for `table`.
    public static func encode(_ table: BlockHashTable) -> [UInt8] {
        var bytes = magic
        bytes.reserveCapacity(headerSize + table.indices.count * 32 + 64)
        append(UInt32(1), to: &bytes)
        append(UInt32(ContentDigest.blockSize), to: &bytes)
        append(table.size, to: &bytes)
        append(UInt64(0), to: &bytes)
        var start = 0
        while start < table.indices.count {
            var end = start + 1
            while end < table.indices.count, table.indices[end] == table.indices[end - 1] + 1, end - start < 1 << 30 {
                end += 1
            }
            append(table.indices[start], to: &bytes)
            append(UInt32(end - start), to: &bytes)
            append(UInt32(0), to: &bytes)
            for hash in table.hashes[start..<end] { hash.append(to: &bytes) }
            start = end
        }
        return bytes
    }

    /// The table in `bytes`, which must describe a disk of `size` bytes; nil when they are not a valid table.
    public static func decode(_ bytes: [UInt8], size: UInt64) -> BlockHashTable? {
        guard bytes.count >= headerSize, Array(bytes[0..<8]) == magic, number(bytes, at: 8, UInt32.self) == 1,
            number(bytes, at: 12, UInt32.self) == UInt32(ContentDigest.blockSize),
            number(bytes, at: 16, UInt64.self) == size, number(bytes, at: 24, UInt64.self) == 0
        else { return nil }
        var table = BlockHashTable(size: size)
        let blockCount = table.blockCount
        var offset = headerSize
        var nextAllowed: UInt64 = 0
        while offset < bytes.count {
            guard bytes.count - offset >= runHeaderSize else { return nil }
            let first = number(bytes, at: offset, UInt64.self)
            let count = UInt64(number(bytes, at: offset + 8, UInt32.self))
            guard count > 0, number(bytes, at: offset + 12, UInt32.self) == 0, first >= nextAllowed,
                first < blockCount, count <= blockCount - first,
                UInt64(bytes.count - offset - runHeaderSize) / 32 >= count
            else { return nil }
            offset += runHeaderSize
            for index in first..<(first + count) {
                let hash = BlockHash(bytes: bytes[offset..<(offset + 32)])
                guard !hash.isZero else { return nil }
                table.append(hash, at: index)
                offset += 32
            }
            nextAllowed = first + count
        }
        return table
    }

    /// The largest file a table of a disk of `size` bytes can take: every other block listed, each a run.
    public static func maximumSize(forDiskSize size: UInt64) -> UInt64 {
        let (runs, overflow) = ContentDigest.blockCount(forSize: size).multipliedReportingOverflow(
            by: UInt64(runHeaderSize + 32))
        return overflow ? .max : runs + UInt64(headerSize)
    }

    private static func append<Number: FixedWidthInteger>(_ value: Number, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }

    private static func number<Number: FixedWidthInteger>(_ bytes: [UInt8], at offset: Int, _: Number.Type) -> Number {
        var value = Number.zero
        for byte in bytes[offset..<(offset + Number.bitWidth / 8)] { value = value << 8 | Number(byte) }
        return value
    }
}
