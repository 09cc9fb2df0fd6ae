/// Where the data of one guest cluster of a qcow2 image comes from, as its L2 entry says.
public enum ClusterMapping: Sendable, Equatable {
    /// Stored uncompressed at this host offset (cluster-aligned) in the image file.
    case data(hostOffset: UInt64)
    /// Stored compressed (deflate or zstd, as the header says): `length` bytes at `hostOffset` (not aligned)
    /// decompress to one cluster.
    case compressed(hostOffset: UInt64, length: Int)
    /// Reads as zeros without looking at the backing file (the v3 "reads as zeros" flag, preallocated or not).
    case zero
    /// Not in this image: reads fall through to the backing file, or zeros if there is none.
    case unallocated
}

/// The layout facts of one image needed to decode its L1 and L2 entries.
struct ClusterGeometry: Sendable {
    /// The image's path, so that an error names the file it is about.
    let path: String
    let clusterBits: Int
    let version: UInt32
    /// The image file's size: every structure must start inside it.
    let fileSize: UInt64

    /// Bits 9-55 of L1 and standard L2 entries hold a host offset.
    static let offsetMask: UInt64 = 0x00FF_FFFF_FFFF_FE00
    static let compressedFlag: UInt64 = 1 << 62
    static let zeroFlag: UInt64 = 1

    var clusterSize: UInt64 { 1 << UInt64(clusterBits) }
    var clusterMask: UInt64 { clusterSize - 1 }
    var l2Bits: Int { clusterBits - 3 }
    /// Guest bytes described by one L2 table (one L1 entry).
    var bytesPerL2Table: UInt64 { 1 << UInt64(clusterBits + l2Bits) }

    /// The L2 table an L1 entry points to, or nil if that whole range is unallocated. A table that is not
    /// aligned or not wholly inside the file is corruption: reading it would mix unrelated bytes in.
    func l2TableOffset(fromL1Entry entry: UInt64, index: Int) throws(QCOW2Error) -> UInt64? {
        let offset = entry & Self.offsetMask
        guard offset != 0 else { return nil }
        guard offset & clusterMask == 0 else {
            throw corrupt("L1 entry \(index): the L2 table at \(offset) is not aligned to a cluster")
        }
        guard offset <= fileSize, fileSize - offset >= clusterSize else {
            throw corrupt(
                "L1 entry \(index): the L2 table at \(offset) runs past the end of the file (\(fileSize) bytes)")
        }
        return offset
    }

    /// Classifies an L2 entry. `guestOffset` is only for the message of an error.
    func mapping(ofL2Entry entry: UInt64, guestOffset: UInt64) throws(QCOW2Error) -> ClusterMapping {
        if entry & Self.compressedFlag != 0 {
            // The split between offset and sector count moves with the cluster size so that a compressed
            // cluster, which can take slightly more than a cluster, always has room for its count.
            let shift = UInt64(62 - (clusterBits - 8))
            let hostOffset = entry & ((1 << shift) - 1)
            let sectors = ((entry >> shift) & ((1 << UInt64(clusterBits - 8)) - 1)) + 1
            let length = Int(sectors) * 512 - Int(hostOffset & 511)
            guard hostOffset != 0, hostOffset < fileSize else {
                throw corrupt("guest offset \(guestOffset): compressed data at \(hostOffset) is outside the file")
            }
            // The last cluster's sectors may end past the file, never past its last sector: qemu allocates the
            // compressed bytes and the sector count rounds their end up to 512.
            let fileEnd = (fileSize + 511) & ~511
            guard hostOffset + UInt64(length) <= fileEnd else {
                throw corrupt(
                    "guest offset \(guestOffset): the compressed cluster at \(hostOffset) (\(length) bytes) runs past "
                        + "the end of the file")
            }
            return .compressed(hostOffset: hostOffset, length: length)
        }
        if entry & Self.zeroFlag != 0 {
            // Version 2 has no zero flag; qemu treats the bit there as corruption, and so do we.
            guard version >= 3 else {
                throw corrupt("guest offset \(guestOffset): a zero cluster in a version 2 image")
            }
            return .zero
        }
        let hostOffset = entry & Self.offsetMask
        guard hostOffset != 0 else { return .unallocated }
        guard hostOffset & clusterMask == 0 else {
            throw corrupt("guest offset \(guestOffset): the cluster at \(hostOffset) is not aligned to a cluster")
        }
        // A cluster that starts past the end of the file would read as zeros, silently; that is a damaged
        // image, not a sparse one. A cluster the file ends inside of reads zeros for its tail, as in qemu.
        guard hostOffset < fileSize else {
            throw corrupt("guest offset \(guestOffset): the cluster at \(hostOffset) is past the end of the file")
        }
        return .data(hostOffset: hostOffset)
    }

    /// A corruption error naming the image, since a chain has several.
    func corrupt(_ message: String) -> QCOW2Error {
        QCOW2Error(.corrupt, "\(path) is corrupt: \(message) (file size \(fileSize))")
    }
}
