extension QCOW2Header {
    /// Bytes to read before the cluster size is known.
    public static let minimumReadLength = 112

    /// The largest L1 table accepted (as qemu: 32 MiB), so that a hostile header cannot make a reader
    /// allocate without bound.
    static let maximumL1Bytes = 32 << 20

    /// What an encrypted repository's sealed objects start with (the Sealing target's header magic): such a file is
    /// named for what it is rather than as a qcow2 without its magic.
    static let sealedObjectMagic = Array("PBSEAL01".utf8)

    /// Parses a header from the start of an image. `bytes` holds at least the first cluster, or the whole
    /// file if it is shorter; `fileSize` is the image file's size.
    public static func parse(_ bytes: [UInt8], fileSize: UInt64) throws(QCOW2Error) -> QCOW2Header {
        let reader = BigEndianReader(bytes)
        guard bytes.count >= 72, try reader.u32(at: 0) == magic else {
            if bytes.starts(with: sealedObjectMagic) {
                throw QCOW2Error(
                    .notQCOW2,
                    "a sealed object of an encrypted Pullback repository, not a plain image: read it through "
                        + "`pullback restore` or `pullback serve` with the repository's --key-file")
            }
            throw QCOW2Error(.notQCOW2, "not a qcow2 image (no qcow2 magic at its start)")
        }
        var header = QCOW2Header()
        header.version = try reader.u32(at: 4)
        guard header.version == 2 || header.version == 3 else {
            throw QCOW2Error(.unsupported, "qcow2 version \(header.version) is not supported (only 2 and 3)")
        }
        header.backingFileOffset = try reader.u64(at: 8)
        header.backingFileSize = try reader.u32(at: 16)
        header.clusterBits = try reader.u32(at: 20)
        header.size = try reader.u64(at: 24)
        header.cryptMethod = try reader.u32(at: 32)
        header.l1Size = try reader.u32(at: 36)
        header.l1TableOffset = try reader.u64(at: 40)
        header.refcountTableOffset = try reader.u64(at: 48)
        header.refcountTableClusters = try reader.u32(at: 56)
        header.snapshotCount = try reader.u32(at: 60)
        header.snapshotsOffset = try reader.u64(at: 64)
        if header.version == 2 {
            header.headerLength = 72
            header.refcountOrder = 4
        } else {
            header.incompatibleFeatures = try reader.u64(at: 72)
            header.compatibleFeatures = try reader.u64(at: 80)
            header.autoclearFeatures = try reader.u64(at: 88)
            header.refcountOrder = try reader.u32(at: 96)
            header.headerLength = try reader.u32(at: 100)
            header.compressionType = header.headerLength > 104 ? try reader.u8(at: 104) : 0
        }
        try header.validate(fileSize: fileSize, available: bytes.count)
        try header.readExtensions(reader)
        if header.backingFileOffset != 0 {
            guard header.backingFileSize > 0, header.backingFileSize <= 1023 else {
                throw QCOW2Error(.corrupt, "the backing file name length (\(header.backingFileSize)) is not 1-1023")
            }
            guard header.backingFileOffset < UInt64(bytes.count) else {
                throw QCOW2Error(
                    .corrupt, "the backing file name at \(header.backingFileOffset) lies outside the first cluster")
            }
            let name = try reader.slice(at: Int(header.backingFileOffset), count: Int(header.backingFileSize))
            header.backingFile = String(decoding: name, as: UTF8.self)
        }
        return header
    }

    private func validate(fileSize: UInt64, available: Int) throws(QCOW2Error) {
        guard (9...21).contains(clusterBits) else {
            throw QCOW2Error(.corrupt, "cluster bits \(clusterBits) is outside 9-21")
        }
        guard refcountOrder <= 6 else { throw QCOW2Error(.corrupt, "refcount order \(refcountOrder) is above 6") }
        guard cryptMethod == 0 else { throw QCOW2Error(.unsupported, "encrypted qcow2 images are not supported") }
        if incompatibleFeatures & Incompatible.corrupt != 0 {
            throw QCOW2Error(.corrupt, "the image is marked corrupt; repair it with qemu-img check -r all")
        }
        let unknown = incompatibleFeatures & ~Incompatible.known
        if unknown != 0 {
            throw QCOW2Error(
                .unsupported, "the image uses unknown incompatible features (bits 0x\(String(unknown, radix: 16)))")
        }
        if incompatibleFeatures & Incompatible.externalDataFile != 0 {
            throw QCOW2Error(.unsupported, "images with an external data file are not supported")
        }
        if incompatibleFeatures & Incompatible.extendedL2 != 0 {
            throw QCOW2Error(.unsupported, "images with extended L2 entries are not supported")
        }
        try validateCompressionType()
        guard headerLength >= (version == 2 ? 72 : 104), Int(headerLength) <= min(available, clusterSize) else {
            throw QCOW2Error(.corrupt, "header length \(headerLength) does not fit the first cluster")
        }
        let clusterMask = UInt64(clusterSize - 1)
        guard l1TableOffset & clusterMask == 0, refcountTableOffset & clusterMask == 0 else {
            throw QCOW2Error(.corrupt, "the L1 or refcount table is not aligned to a cluster")
        }
        let bytesPerL1Entry = UInt64(clusterSize) * UInt64(l2Entries)
        let needed = size / bytesPerL1Entry + (size % bytesPerL1Entry == 0 ? 0 : 1)
        guard UInt64(l1Size) >= needed, Int(l1Size) * 8 <= Self.maximumL1Bytes else {
            throw QCOW2Error(.corrupt, "L1 size \(l1Size) does not fit the virtual size \(size)")
        }
        guard l1Size == 0 || (l1TableOffset <= fileSize && UInt64(l1Size) * 8 <= fileSize - l1TableOffset) else {
            throw QCOW2Error(
                .corrupt, "the L1 table at \(l1TableOffset) runs past the end of the file (\(fileSize) bytes)")
        }
    }

    /// zlib without the compression type bit, zstd with it, as qemu requires: the bit keeps readers that know only
    /// zlib from taking zstd clusters for deflate.
    private func validateCompressionType() throws(QCOW2Error) {
        let flagged = incompatibleFeatures & Incompatible.compressionType != 0
        switch compressionType {
        case CompressionType.zlib where flagged:
            throw QCOW2Error(.corrupt, "the compression type is zlib but incompatible feature bit 3 says it is not")
        case CompressionType.zstd where !flagged:
            throw QCOW2Error(.corrupt, "the compression type is zstd but incompatible feature bit 3 is not set")
        case CompressionType.zlib, CompressionType.zstd:
            return
        default:
            throw QCOW2Error(
                .unsupported, "compression type \(compressionType) is not supported (only 0, zlib, and 1, zstd)")
        }
    }

    private mutating func readExtensions(_ reader: BigEndianReader) throws(QCOW2Error) {
        guard version == 3 else { return }
        var offset = Int(headerLength)
        let limit = min(reader.bytes.count, clusterSize)
        while offset + 8 <= limit {
            let type = try reader.u32(at: offset)
            let length = Int(try reader.u32(at: offset + 4))
            if type == ExtensionType.end { return }
            guard length <= limit - offset - 8 else {
                throw QCOW2Error(.corrupt, "header extension 0x\(String(type, radix: 16)) runs past the first cluster")
            }
            if type == ExtensionType.backingFormat {
                backingFormat = String(decoding: try reader.slice(at: offset + 8, count: length), as: UTF8.self)
            }
            offset += 8 + (length + 7) / 8 * 8
        }
    }

    /// The first cluster of an image with this header: the fixed fields, the backing format extension
    /// and the backing file name. `backingFileOffset`, `backingFileSize` and `headerLength` are set here.
    public func encoded() -> [UInt8] {
        var extensions = BigEndianWriter()
        if let backingFormat {
            let name = Array(backingFormat.utf8)
            extensions.u32(ExtensionType.backingFormat)
            extensions.u32(UInt32(name.count))
            extensions.bytes += name
            extensions.pad(to: 8)
        }
        extensions.u32(ExtensionType.end)
        extensions.u32(0)
        let backingName = backingFile.map { Array($0.utf8) } ?? []
        let backingOffset =
            backingName.isEmpty ? 0 : UInt64(Self.version3LengthWithCompressionType) + UInt64(extensions.bytes.count)

        var out = BigEndianWriter()
        out.u32(Self.magic)
        out.u32(3)
        out.u64(backingOffset)
        out.u32(UInt32(backingName.count))
        out.u32(clusterBits)
        out.u64(size)
        out.u32(0)
        out.u32(l1Size)
        out.u64(l1TableOffset)
        out.u64(refcountTableOffset)
        out.u32(refcountTableClusters)
        out.u32(0)
        out.u64(0)
        out.u64(incompatibleFeatures)
        out.u64(compatibleFeatures)
        out.u64(autoclearFeatures)
        out.u32(refcountOrder)
        out.u32(Self.version3LengthWithCompressionType)
        out.u8(compressionType)
        out.pad(to: 8)
        out.bytes += extensions.bytes
        out.bytes += backingName
        return out.bytes
    }
}
