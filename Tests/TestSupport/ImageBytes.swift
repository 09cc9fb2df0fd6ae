import Foundation

/// Edits bytes of an image file in place, to make hostile variants of real images.
package enum ImageBytes {
    package static func read(_ path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    package static func write(_ bytes: [UInt8], to path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    package static func u64(_ bytes: [UInt8], at offset: Int) -> UInt64 {
        bytes[offset..<offset + 8].reduce(0) { $0 << 8 | UInt64($1) }
    }

    package static func u32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        bytes[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
    }

    package static func put(_ value: UInt64, into bytes: inout [UInt8], at offset: Int) {
        for index in 0..<8 { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> UInt64(56 - 8 * index)) }
    }

    package static func put(_ value: UInt32, into bytes: inout [UInt8], at offset: Int) {
        for index in 0..<4 { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> UInt32(24 - 8 * index)) }
    }

    /// Changes a file with `edit` applied to its bytes.
    package static func patch(_ path: String, _ edit: (inout [UInt8]) -> Void) throws {
        var bytes = try read(path)
        edit(&bytes)
        try write(bytes, to: path)
    }

    /// The L1 table offset from a header, and the offset of the L2 table its first entry points to.
    package static func firstL2Offset(_ bytes: [UInt8]) -> (l1: Int, l2: Int) {
        let l1 = Int(u64(bytes, at: 40))
        return (l1, Int(u64(bytes, at: l1) & 0x00FF_FFFF_FFFF_FE00))
    }
}

extension ImageBytes {
    /// Turns the real qcow2 image at `path` into the hostile one a review built: every L1 entry names the first
    /// entry's L2 table, and that table alternates data and zero clusters, so that a file of a few MiB describes a disk
    /// whose walk, cluster by cluster, takes as many steps as the L1 table has entries times an L2 table's. The first L1
    /// entry must map a data cluster at guest offset 0 (write there with qemu-io first). Returns the L1 entries.
    @discardableResult
    package static func shareFirstL2Table(_ path: String) throws -> Int {
        var bytes = try read(path)
        let entriesPerTable = (1 << Int(u32(bytes, at: 20))) / 8
        let l1Entries = Int(u32(bytes, at: 36))
        let l1 = Int(u64(bytes, at: 40))
        let l1Entry = u64(bytes, at: l1)
        let l2 = Int(l1Entry & 0x00FF_FFFF_FFFF_FE00)
        let data = l2 == 0 ? 0 : u64(bytes, at: l2)
        guard data & 0x00FF_FFFF_FFFF_FE00 != 0 else {
            throw HarnessError("\(path): the first L1 entry does not map a data cluster at guest offset 0")
        }
        for index in 0..<entriesPerTable { put(index % 2 == 0 ? data : 1, into: &bytes, at: l2 + 8 * index) }
        for index in 0..<l1Entries { put(l1Entry, into: &bytes, at: l1 + 8 * index) }
        try write(bytes, to: path)
        return l1Entries
    }
}
