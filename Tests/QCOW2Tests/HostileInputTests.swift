import Foundation
import QCOW2
import TestSupport
import Testing

extension QCOW2ReaderTests {
    /// Damaged and hostile images: each must be a typed QCOW2Error with the right code, never a crash, a
    /// hang or silently wrong data.
    @Suite(.timeLimit(.minutes(3)))
    struct HostileInput {
        /// A real image (64 KiB clusters, 1 MiB) with data in two L2 ranges... and its layout.
        struct Sample {
            let directory: TemporaryDirectory
            let path: String
            let bytes: [UInt8]
            var l1Offset: Int { Int(ImageBytes.u64(bytes, at: 40)) }
            var l1Size: Int { Int(ImageBytes.u32(bytes, at: 36)) }
            var l2Offset: Int { ImageBytes.firstL2Offset(bytes).l2 }

            init(clusterSize: Int = 65536, compat: String = "1.1") async throws {
                directory = try TemporaryDirectory()
                path = directory.file("sample.qcow2")
                try await Qemu.create(
                    path, size: 1 << 20, options: ["-o", "cluster_size=\(clusterSize),compat=\(compat)"])
                try await Qemu.io(path, ["write -P 0x5a 0 131072", "write -P 0xff 524288 65536"])
                bytes = try ImageBytes.read(path)
            }

            /// The host offsets of the data clusters the first L2 table maps.
            var dataOffsets: [Int] {
                (0..<(65536 / 8)).map { ImageBytes.u64(bytes, at: l2Offset + 8 * $0) & 0x00FF_FFFF_FFFF_FE00 }
                    .filter { $0 != 0 }.map { Int($0) }
            }

            /// Writes a variant of the image and returns its path.
            func variant(_ name: String, _ edit: (inout [UInt8]) -> Void) throws -> String {
                var copy = bytes
                edit(&copy)
                let variant = directory.file(name)
                try ImageBytes.write(copy, to: variant)
                return variant
            }
        }

        /// Opens, maps, reads and counts everything, so that any damage is reached.
        static func exercise(_ path: String) throws {
            let chain = try QCOW2Chain.open(path: path)
            _ = try chain.map(0..<chain.size)
            _ = try chain.read(count: Int(min(chain.size, 4 << 20)), at: 0)
            _ = try chain.layerStatistics()
        }

        @Test("files truncated at many lengths fail as not qcow2 or corrupt, at the right step")
        func truncated() async throws {
            let sample = try await Sample()
            defer { sample.directory.remove() }
            let l1End = sample.l1Offset + sample.l1Size * 8
            let l2End = sample.l2Offset + 65536
            let lastDataStart = try #require(sample.dataOffsets.max())
            var cuts = [0, 1, 3, 4, 8, 20, 24, 71, 72, 100, 104, 111, 112, 113, 120, 200, 4095, 65535, 65536]
            cuts += [
                sample.l1Offset, sample.l1Offset + 4, l1End - 1, l1End, sample.l2Offset, sample.l2Offset + 8, l2End - 1,
            ]
            cuts += [lastDataStart, lastDataStart + 1, lastDataStart + 65535, sample.bytes.count - 1]
            for cut in Set(cuts).sorted() where cut <= sample.bytes.count {
                let path = try sample.variant("cut-\(cut).qcow2") { $0.removeSubrange(cut...) }
                // Too short for a header; the header, L1 or L2 table cut; a data cluster starting at or past
                // the end. A cut inside the last data cluster only loses bytes that read as zeros.
                let expected: QCOW2Error.Code? = cut < 72 ? .notQCOW2 : cut <= lastDataStart ? .corrupt : nil
                if let expected {
                    expectError(expected) { try Self.exercise(path) }
                } else {
                    try Self.exercise(path)
                }
                if cut >= 72 && cut < l1End {
                    // Damage in the header or L1 table is found when opening, not later.
                    expectError(.corrupt) { _ = try QCOW2Chain.open(path: path) }
                }
                try FileManager.default.removeItem(atPath: path)
            }
        }

        @Test("a damaged header gives the error its damage calls for")
        func damagedHeaders() async throws {
            let sample = try await Sample()
            defer { sample.directory.remove() }
            func expectHeader(_ code: QCOW2Error.Code, _ name: String, _ edit: (inout [UInt8]) -> Void) throws {
                let path = try sample.variant(name + ".qcow2", edit)
                expectError(code) { _ = try QCOW2Chain.open(path: path) }
                expectError(code) { _ = try QCOW2Image(path: path) }
            }
            try expectHeader(.notQCOW2, "bad-magic") { $0[0] = 0x51 ^ 0xff }
            try expectHeader(.unsupported, "version-1") { ImageBytes.put(UInt32(1), into: &$0, at: 4) }
            try expectHeader(.unsupported, "version-4") { ImageBytes.put(UInt32(4), into: &$0, at: 4) }
            try expectHeader(.corrupt, "cluster-bits-30") { ImageBytes.put(UInt32(30), into: &$0, at: 20) }
            try expectHeader(.corrupt, "cluster-bits-8") { ImageBytes.put(UInt32(8), into: &$0, at: 20) }
            try expectHeader(.corrupt, "cluster-bits-max") { ImageBytes.put(UInt32.max, into: &$0, at: 20) }
            try expectHeader(.corrupt, "l1-past-eof") {
                ImageBytes.put(UInt64($0.count + 65536) & ~0xffff, into: &$0, at: 40)
            }
            try expectHeader(.corrupt, "l1-unaligned") {
                ImageBytes.put(UInt64(sample.l1Offset + 8), into: &$0, at: 40)
            }
            try expectHeader(.corrupt, "l1-offset-huge") {
                ImageBytes.put(UInt64(0xFFFF_FFFF_FFFF_0000), into: &$0, at: 40)
            }
            try expectHeader(.corrupt, "l1-size-huge") { ImageBytes.put(UInt32.max, into: &$0, at: 36) }
            try expectHeader(.corrupt, "l1-too-small") {
                ImageBytes.put(UInt32(0), into: &$0, at: 36)
            }
            try expectHeader(.corrupt, "virtual-size-huge") { ImageBytes.put(UInt64.max, into: &$0, at: 24) }
            try expectHeader(.unsupported, "unknown-incompatible") {
                ImageBytes.put(UInt64(1 << 40), into: &$0, at: 72)
            }
            try expectHeader(.corrupt, "corrupt-bit") { ImageBytes.put(UInt64(1 << 1), into: &$0, at: 72) }
            try expectHeader(.unsupported, "external-data-file") { ImageBytes.put(UInt64(1 << 2), into: &$0, at: 72) }
            try expectHeader(.unsupported, "extended-l2") { ImageBytes.put(UInt64(1 << 4), into: &$0, at: 72) }
            try expectHeader(.unsupported, "compression-type-2") {
                ImageBytes.put(UInt64(1 << 3), into: &$0, at: 72)
                $0[104] = 2
            }
            try expectHeader(.unsupported, "encrypted") { ImageBytes.put(UInt32(1), into: &$0, at: 32) }
            try expectHeader(.corrupt, "header-length-huge") { ImageBytes.put(UInt32.max, into: &$0, at: 100) }
            try expectHeader(.corrupt, "backing-name-offset-huge") {
                ImageBytes.put(UInt64.max, into: &$0, at: 8)
                ImageBytes.put(UInt32(5), into: &$0, at: 16)
            }
            try expectHeader(.corrupt, "backing-name-offset-past-cluster") {
                ImageBytes.put(UInt64(65530), into: &$0, at: 8)
                ImageBytes.put(UInt32(100), into: &$0, at: 16)
            }
            try expectHeader(.corrupt, "extension-runs-past-cluster") {
                ImageBytes.put(UInt32(0x1234_5678), into: &$0, at: 112)
                ImageBytes.put(UInt32(70000), into: &$0, at: 116)
            }
            // The dirty bit alone is fine for reading: refcounts are not used.
            let dirty = try sample.variant("dirty.qcow2") { ImageBytes.put(UInt64(1), into: &$0, at: 72) }
            try Self.exercise(dirty)
        }

        @Test("L1 and L2 entries pointing where they may not are corrupt when reached")
        func damagedTables() async throws {
            let sample = try await Sample()
            defer { sample.directory.remove() }
            let l1 = sample.l1Offset
            let l2 = sample.l2Offset
            let beyond = UInt64(sample.bytes.count + 65536) & ~0xffff
            let ffCluster = try #require(sample.dataOffsets.max())
            // Four sectors of 0xff bytes, which are not a deflate stream.
            let compressedGarbage: UInt64 = 1 << 62 | 3 << 54 | UInt64(ffCluster + 7)
            // (name, whether mapping reaches the damage, the edit)
            let cases: [(String, Bool, (inout [UInt8]) -> Void)] = [
                ("l1-entry-past-eof", true, { ImageBytes.put(beyond | 1 << 63, into: &$0, at: l1) }),
                ("l1-entry-unaligned", true, { ImageBytes.put(UInt64(l2 + 512) | 1 << 63, into: &$0, at: l1) }),
                ("l2-entry-past-eof", true, { ImageBytes.put(beyond | 1 << 63, into: &$0, at: l2) }),
                (
                    "l2-entry-far-past-eof", true,
                    { ImageBytes.put(UInt64(0x00FF_FFFF_FFFF_0000), into: &$0, at: l2 + 8) }
                ),
                ("l2-entry-unaligned", true, { ImageBytes.put(UInt64(65536 + 4096) | 1 << 63, into: &$0, at: l2) }),
                (
                    "compressed-past-eof", true,
                    { ImageBytes.put(UInt64(1 << 62) | UInt64(sample.bytes.count + 100), into: &$0, at: l2) }
                ),
                // Mapping does not inflate, so only reading finds this one.
                ("compressed-garbage", false, { ImageBytes.put(compressedGarbage, into: &$0, at: l2) }),
            ]
            for (name, reachedByMap, edit) in cases {
                let path = try sample.variant(name + ".qcow2", edit)
                let chain = try QCOW2Chain.open(path: path)
                expectError(.corrupt) { _ = try chain.read(count: 131072, at: 0) }
                if reachedByMap {
                    expectError(.corrupt) { _ = try chain.map(0..<chain.size) }
                    expectError(.corrupt) { _ = try chain.layerStatistics() }
                    let error = expectError(.corrupt) {
                        let image = try QCOW2Image(path: path)
                        for cluster in 0..<2 { _ = try image.mapping(ofClusterAt: UInt64(cluster) * 65536) }
                    }
                    #expect(error?.message.contains(path) == true, "\(error?.message ?? "")")
                } else {
                    #expect(try chain.map(0..<65536).first?.kind == .data)
                    let error = expectError(.corrupt) { _ = try chain.read(count: 1, at: 100) }
                    #expect(error?.message.contains(path) == true, "\(error?.message ?? "")")
                }
            }
        }

        @Test("a zero flag in a version 2 image is corrupt")
        func zeroFlagInVersion2() async throws {
            let sample = try await Sample(compat: "0.10")
            defer { sample.directory.remove() }
            let path = try sample.variant("v2-zero.qcow2") {
                ImageBytes.put(UInt64(1), into: &$0, at: sample.l2Offset + 8 * 3)
            }
            let chain = try QCOW2Chain.open(path: path)
            expectError(.corrupt) { _ = try chain.read(count: 1, at: 3 * 65536) }
            #expect(try chain.read(count: 1, at: 0) == [0x5a])
        }

        @Test("L1 entries sharing an L2 table are refused when opening, in one pass however many there are")
        func sharedL2Tables() async throws {
            let sample = try await Sample(clusterSize: 512)
            defer { sample.directory.remove() }
            // Two entries of a real image naming one table.
            let two = try sample.variant("two-share.qcow2") { bytes in
                ImageBytes.put(ImageBytes.u64(bytes, at: sample.l1Offset), into: &bytes, at: sample.l1Offset + 8)
            }
            let error = expectError(.corrupt) { _ = try QCOW2Chain.open(path: two) }
            #expect(error?.message.contains("L1 entries 0 and 1 share the L2 table") == true, "\(error?.message ?? "")")

            // The review's image: 4 Mi entries of 512-byte clusters (a 128 GiB disk) naming one table of alternating
            // data and zero clusters, in a 33 MiB file. Walking it took an estimated 38 minutes.
            let huge = sample.directory.file("huge.qcow2")
            try await Qemu.create(huge, size: 128 << 30, options: ["-o", "cluster_size=512"])
            try await Qemu.io(huge, ["write -P 0x5a 0 512"])
            #expect(try ImageBytes.shareFirstL2Table(huge) == 4 << 20)
            let hugeError = expectError(.corrupt) { _ = try QCOW2Chain.open(path: huge) }
            #expect(hugeError?.message.contains("more than the") == true, "\(hugeError?.message ?? "")")
            expectError(.corrupt) { _ = try QCOW2Image(path: huge) }
        }

        @Test("guest clusters and L2 tables inside other metadata are corrupt; an oversized refcount table too")
        func dataInMetadata() async throws {
            let sample = try await Sample()
            defer { sample.directory.remove() }
            let (l1, l2) = (sample.l1Offset, sample.l2Offset)
            let refcountTable = Int(ImageBytes.u64(sample.bytes, at: 48))
            let refcountBlock = Int(ImageBytes.u64(sample.bytes, at: refcountTable) & 0x00FF_FFFF_FFFF_FE00)
            #expect(Set([0, l1, l2, refcountTable, refcountBlock]).count == 5, "qemu's layout: five distinct clusters")
            let allocated: UInt64 = 1 << 63
            // A guest cluster's data in each kind of metadata: found when its mapping is reached.
            let mapped: [(String, UInt64)] = [
                ("data-in-l1", UInt64(l1) | allocated), ("data-in-own-l2", UInt64(l2) | allocated),
                ("data-in-refcount-table", UInt64(refcountTable) | allocated),
                ("data-in-refcount-block", UInt64(refcountBlock) | allocated),
                ("compressed-in-l2", 1 << 62 | UInt64(l2 + 100)),
                ("compressed-in-header", 1 << 62 | 200),
            ]
            for (name, entry) in mapped {
                let path = try sample.variant(name + ".qcow2") { ImageBytes.put(entry, into: &$0, at: l2 + 8) }
                let chain = try QCOW2Chain.open(path: path)
                let error = expectError(.corrupt) { _ = try chain.map(0..<chain.size) }
                #expect(error?.message.contains("lies in") == true, "\(name): \(error?.message ?? "")")
                expectError(.corrupt) { _ = try chain.read(count: 131072, at: 0) }
                expectError(.corrupt) { _ = try chain.layerStatistics() }
                // Clusters before the damaged one still read.
                #expect(try chain.read(count: 1, at: 0) == [0x5a], "\(name)")
            }
            // An L2 table inside other metadata, or a refcount table larger than qemu allows: found when opening.
            let opened: [(String, (inout [UInt8]) -> Void)] = [
                ("l2-is-l1", { ImageBytes.put(UInt64(l1) | allocated, into: &$0, at: l1) }),
                ("l2-is-refcount-table", { ImageBytes.put(UInt64(refcountTable) | allocated, into: &$0, at: l1) }),
                ("l2-is-refcount-block", { ImageBytes.put(UInt64(refcountBlock) | allocated, into: &$0, at: l1) }),
                ("refcount-table-huge", { ImageBytes.put(UInt32(1 << 20), into: &$0, at: 56) }),
                ("refcount-table-past-eof", { ImageBytes.put(UInt64($0.count) & ~0xffff, into: &$0, at: 48) }),
            ]
            for (name, edit) in opened {
                let path = try sample.variant(name + ".qcow2", edit)
                let error = expectError(.corrupt) { _ = try QCOW2Chain.open(path: path) }
                #expect(error?.message.contains(path) == true, "\(name): \(error?.message ?? "")")
            }
        }

        @Test("backing loops, over-deep chains and missing backing files are backing chain errors")
        func brokenChains() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let a = directory.file("a.qcow2")
            let b = directory.file("b.qcow2")
            try await Qemu.create(b, size: 1 << 20)
            try await Qemu.createOverlay(a, backing: "b.qcow2", backingFormat: "qcow2")
            try await runTool(["qemu-img", "rebase", "-u", "-b", "a.qcow2", "-F", "qcow2", b])
            expectError(.backingChain) { _ = try QCOW2Chain.open(path: a) }
            expectError(.backingChain) { _ = try QCOW2Chain.open(path: b) }

            let selfLoop = directory.file("self.qcow2")
            try await Qemu.create(selfLoop, size: 1 << 20)
            try await runTool(["qemu-img", "rebase", "-u", "-b", "self.qcow2", "-F", "qcow2", selfLoop])
            expectError(.backingChain) { _ = try QCOW2Chain.open(path: selfLoop) }

            // The same file under another name: caught by device and inode.
            let linked = directory.file("linked.qcow2")
            let link = directory.file("link.qcow2")
            try await Qemu.create(linked, size: 1 << 20)
            try FileManager.default.linkItem(atPath: linked, toPath: link)
            try await runTool(["qemu-img", "rebase", "-u", "-b", "link.qcow2", "-F", "qcow2", linked])
            expectError(.backingChain) { _ = try QCOW2Chain.open(path: linked) }

            let missing = directory.file("orphan.qcow2")
            try await runTool([
                "qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", "gone.qcow2", "-F", "qcow2", missing, "1M",
            ])
            let error = expectError(.backingChain) { _ = try QCOW2Chain.open(path: missing) }
            #expect(error?.message.contains("gone.qcow2") == true)

            expectError(.io) { _ = try QCOW2Chain.open(path: directory.file("no-such.qcow2")) }
            expectError(.io) { _ = try QCOW2Chain.open(path: directory.path) }
        }
    }
}
