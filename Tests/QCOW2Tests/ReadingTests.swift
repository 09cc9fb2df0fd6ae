import Foundation
import QCOW2
import TestSupport
import Testing

extension QCOW2ReaderTests {
    /// Single images made by qemu-io, read whole and in pieces, against qemu's own reading.
    @Suite(.timeLimit(.minutes(3)))
    struct Reading {
        @Test("patterns, zero writes, discards and unaligned writes", arguments: [4096, 65536, 2 << 20])
        func writtenImage(clusterSize: Int) async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let path = directory.file("image.qcow2")
            // Not a multiple of the cluster size (qemu-img rounds to 512): the last cluster is partial.
            let size: UInt64 = clusterSize == 2 << 20 ? 9 * 1_048_576 + 1024 : 1_000_448
            try await Qemu.create(path, size: size, options: ["-o", "cluster_size=\(clusterSize)"])
            try await Qemu.io(
                path,
                [
                    "write -P 0xaa 0 300000",
                    "write -P 0x55 123457 4099",
                    "write -z 65536 65536",
                    "write -z -u 131072 4096",
                    "write -z 200001 5000",
                    "discard 262144 65536",
                    "write -P 0x11 \(size - 1000) 1000",
                    "write -P 0x22 777777 1",
                    "write -z -u 500000 200000",
                ])
            try await Check.contentsMatchQemu(path)
            try await Check.mapMatchesQemu(path)
        }

        @Test("a version 2 image (compat=0.10)")
        func version2() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let path = directory.file("v2.qcow2")
            try await Qemu.create(path, size: 2_000_000, options: ["-o", "compat=0.10,cluster_size=4096"])
            try await Qemu.io(path, ["write -P 0x42 1000 70000", "write -z 8192 8192", "write -P 0x43 1999000 1000"])
            let chain = try QCOW2Chain.open(path: path)
            #expect(chain.layers[0].header?.version == 2)
            try await Check.contentsMatchQemu(path)
            try await Check.mapMatchesQemu(path)
        }

        @Test("preallocated images", arguments: ["metadata", "falloc", "full"])
        func preallocated(mode: String) async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let path = directory.file("prealloc.qcow2")
            try await Qemu.create(path, size: 3_000_000, options: ["-o", "preallocation=\(mode)"])
            try await Qemu.io(
                path, ["write -P 0x61 100000 200000", "write -z 150000 10000", "write -z -u 1048576 65536"])
            try await Check.contentsMatchQemu(path)
            try await Check.mapMatchesQemu(path)
        }

        @Test("an empty image and a zero-size image")
        func emptyImages() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let empty = directory.file("empty.qcow2")
            try await Qemu.create(empty, size: 5_000_192)
            let chain = try QCOW2Chain.open(path: empty)
            #expect(chain.size == 5_000_192)
            #expect(
                try chain.map(0..<chain.size) == [
                    ChainExtent(offset: 0, length: 5_000_192, kind: .unallocated, layer: nil)
                ])
            #expect(try chain.read(count: 70000, at: 4_000_000).allSatisfy { $0 == 0 })
            try await Check.contentsMatchQemu(empty)

            let zeroSize = directory.file("zero-size.qcow2")
            try await Qemu.create(zeroSize, size: 0)
            let nothing = try QCOW2Chain.open(path: zeroSize)
            #expect(nothing.size == 0)
            #expect(try nothing.map(0..<0).isEmpty)
            #expect(try nothing.read(count: 0, at: 0).isEmpty)
            expectError(.invalidArgument) { _ = try nothing.read(count: 1, at: 0) }
        }

        @Test("a virtual size that is not a multiple of 512")
        func unalignedVirtualSize() async throws {
            // qemu-img rounds sizes up to 512 bytes, so the header is edited afterwards; the L1 table
            // still covers the disk.
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let path = directory.file("odd.qcow2")
            try await Qemu.create(path, size: 1_000_448)
            try await Qemu.io(path, ["write -P 0x3c 900000 100448", "write -P 0x3d 0 1000"])
            let reference = try await Qemu.rawContents(of: path)
            try ImageBytes.patch(path) { ImageBytes.put(UInt64(999_999), into: &$0, at: 24) }
            let chain = try QCOW2Chain.open(path: path)
            #expect(chain.size == 999_999)
            #expect(try chain.read(count: 999_999, at: 0)[...] == reference[..<999_999])
            #expect(try chain.read(count: 1, at: 999_998) == [0x3c])
            try Check.coversExactly(try chain.map(0..<999_999), 0..<999_999)
            #expect(
                try chain.map(999_000..<999_999) == [ChainExtent(offset: 999_000, length: 999, kind: .data, layer: 0)])
            expectError(.invalidArgument) { _ = try chain.read(count: 2, at: 999_998) }
            // The last cluster is partial: counted up to the virtual size only.
            #expect(try chain.layerStatistics()[0].dataBytes == 65536 + 999_999 - 851_968)
        }

        @Test("reads and maps past the end are refused")
        func pastTheEnd() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let path = directory.file("image.qcow2")
            try await Qemu.create(path, size: 1_000_448)
            let chain = try QCOW2Chain.open(path: path)
            #expect(chain.size == 1_000_448)
            #expect(try chain.read(count: 10, at: 1_000_438).count == 10)
            expectError(.invalidArgument) { _ = try chain.read(count: 11, at: 1_000_438) }
            expectError(.invalidArgument) { _ = try chain.read(count: 1, at: UInt64.max) }
            expectError(.invalidArgument) { _ = try chain.read(count: -1, at: 0) }
            expectError(.invalidArgument) { _ = try chain.map(0..<1_000_449) }
            let image = try QCOW2Image(path: path)
            expectError(.invalidArgument) { _ = try image.mapping(ofClusterAt: 1_000_448) }
        }

        @Test("QCOW2Image classifies clusters as its L2 entries say")
        func clusterMappings() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let path = directory.file("image.qcow2")
            try await Qemu.create(path, size: 1 << 20)
            try await Qemu.io(
                path,
                ["write -P 1 0 65536", "write -z 65536 65536", "write -P 2 131072 65536", "write -z 131072 65536"])
            let image = try QCOW2Image(path: path)
            #expect(image.clusterSize == 65536)
            #expect(image.virtualSize == 1 << 20)
            guard case .data(let host) = try image.mapping(ofClusterAt: 100) else {
                Issue.record("cluster 0 should be data")
                return
            }
            #expect(host % 65536 == 0)
            #expect(try image.mapping(ofClusterAt: 65536) == .zero)
            #expect(try image.mapping(ofClusterAt: 131072 + 5) == .zero)  // zero flag over an allocated cluster
            #expect(try image.mapping(ofClusterAt: 1_000_000) == .unallocated)
        }
    }
}
