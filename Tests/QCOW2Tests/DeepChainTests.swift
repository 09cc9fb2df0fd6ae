import Foundation
import TestSupport
import Testing

@testable import QCOW2

extension QCOW2ReaderTests {
    /// Chains as deep as years of daily incrementals: a thousand small overlays read as qemu reads them, and the
    /// depth limit refuses only chains far deeper.
    @Suite(.timeLimit(.minutes(5)))
    struct DeepChains {
        /// Overlays `p0001.qcow2` ... over a base `p0000.qcow2` of 2 MiB with 4 KiB clusters, each backed by the one
        /// before and holding one 4 KiB cluster of its own (`dataClusters`) or no cluster at all.
        ///
        /// One overlay is made by qemu-img and qemu-io; the others are its bytes with the backing name, the cluster's
        /// L2 entry and the data changed, so that a thousand cost a second rather than two minutes of qemu runs.
        static func makeChain(in directory: TemporaryDirectory, depth: Int, dataClusters: Bool) async throws {
            let name = { (index: Int) in String(format: "p%04d.qcow2", index) }
            let size: UInt64 = 2 << 20
            try await Qemu.create(directory.file(name(0)), size: size, options: ["-o", "cluster_size=4096"])
            try await Qemu.io(directory.file(name(0)), ["write -P 0x11 0 1M"])
            let template = directory.file("template.qcow2")
            try await Qemu.create(template, size: size, options: ["-o", "cluster_size=4096"])
            if dataClusters { try await Qemu.io(template, ["write -P 0x01 0 4k"]) }
            try await runTool(["qemu-img", "rebase", "-u", "-f", "qcow2", "-b", name(0), "-F", "qcow2", template])
            let bytes = try ImageBytes.read(template)
            let nameOffset = Int(ImageBytes.u64(bytes, at: 8))
            #expect(bytes[nameOffset..<nameOffset + 11].elementsEqual(name(0).utf8))
            let l2 = dataClusters ? ImageBytes.firstL2Offset(bytes).l2 : 0
            let entry = dataClusters ? ImageBytes.u64(bytes, at: l2) : 0
            let host = Int(entry & 0x00FF_FFFF_FFFF_FE00)
            for index in 1...depth {
                var overlay = bytes
                overlay.replaceSubrange(nameOffset..<nameOffset + 11, with: Array(name(index - 1).utf8))
                if dataClusters {
                    ImageBytes.put(UInt64(0), into: &overlay, at: l2)
                    ImageBytes.put(entry, into: &overlay, at: l2 + 8 * Self.cluster(of: index))
                    overlay.replaceSubrange(
                        host..<host + 4096, with: repeatElement(Self.pattern(of: index), count: 4096))
                }
                try ImageBytes.write(overlay, to: directory.file(name(index)))
            }
        }

        /// The cluster overlay `index` writes: every one of the 512 in turn, in a scattered order.
        static func cluster(of index: Int) -> Int { index * 7919 % 512 }
        static func pattern(of index: Int) -> UInt8 { UInt8(index % 250 + 2) }

        @Test("a chain of 1,000 overlays reads and maps as qemu-img convert reads it, at its top and in its middle")
        func thousandOverlays() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try await Self.makeChain(in: directory, depth: 1000, dataClusters: true)
            for top in [1000, 500, 1] {
                let path = directory.file(String(format: "p%04d.qcow2", top))
                let chain = try QCOW2Chain.open(path: path)
                #expect(chain.layers.count == top + 1)
                let expected = try await Qemu.rawContents(of: path)
                let actual = try chain.read(count: Int(chain.size), at: 0)
                #expect(actual == expected, "the chain topped by overlay \(top) reads as qemu reads it")
                // Each cluster is decided by the newest overlay that wrote it, or by the base, or by none.
                let newest = Dictionary((1...top).map { (Self.cluster(of: $0), $0) }, uniquingKeysWith: max)
                for extent in try chain.map(0..<chain.size) {
                    for cluster in Int(extent.offset / 4096)..<Int(extent.range.upperBound / 4096) {
                        let layer = newest[cluster].map { top - $0 } ?? (cluster < 256 ? top : nil)
                        #expect(extent.layer == layer, "cluster \(cluster) of \(top): \(extent)")
                        #expect(extent.kind == (layer == nil ? .unallocated : .data), "cluster \(cluster): \(extent)")
                    }
                }
                // Small maps (a server's, one per read) come from the resolved regions: the same as the whole map
                // cut to them.
                let whole = try chain.map(0..<chain.size)
                for offset in stride(from: UInt64(777), to: chain.size - 30_000, by: 61_297) {
                    let range = offset..<offset + 30_000
                    let cut = whole.filter { $0.range.overlaps(range) }.map { extent in
                        let start = max(extent.offset, range.lowerBound)
                        let end = min(extent.range.upperBound, range.upperBound)
                        return ChainExtent(offset: start, length: end - start, kind: extent.kind, layer: extent.layer)
                    }
                    #expect(try chain.map(range) == cut, "map of \(range) in the chain topped by \(top)")
                }
                // Unaligned reads across clusters decided by different layers.
                for offset in stride(from: 1000, to: Int(chain.size) - 20_000, by: 99_991) {
                    #expect(
                        try chain.read(count: 20_000, at: UInt64(offset)) == Array(expected[offset..<offset + 20_000]))
                }
            }
            // The confined open (a repository's) reads the same 1,001 images.
            let expectedLayers = (0...1000).reversed().map { index in
                QCOW2Chain.ExpectedLayer(
                    path: directory.file(String(format: "p%04d.qcow2", index)),
                    backingName: index == 0 ? nil : String(format: "p%04d.qcow2", index - 1))
            }
            let confined = try QCOW2Chain(exactly: expectedLayers)
            let opened = try QCOW2Chain.open(path: directory.file("p1000.qcow2"))
            #expect(try confined.read(count: Int(confined.size), at: 0) == opened.read(count: Int(opened.size), at: 0))
            if case .qcow2(let image) = confined.images[0] {
                #expect(image.caches.l2Tables.cost <= MetadataCaches.maximumL2Budget)
            }
        }

        @Test("a chain of the most images a reader opens reads; one more is a backing chain error")
        func deepestChain() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try await Self.makeChain(in: directory, depth: QCOW2Chain.maximumLayers, dataClusters: false)
            let deepest = try QCOW2Chain.open(
                path: directory.file(String(format: "p%04d.qcow2", QCOW2Chain.maximumLayers - 1)))
            #expect(deepest.layers.count == QCOW2Chain.maximumLayers)
            #expect(try deepest.read(count: 4096, at: 0).allSatisfy { $0 == 0x11 })
            let error = expectError(.backingChain) {
                _ = try QCOW2Chain.open(path: directory.file(String(format: "p%04d.qcow2", QCOW2Chain.maximumLayers)))
            }
            #expect(error?.message.contains("deeper than \(QCOW2Chain.maximumLayers) images") == true)
        }
    }
}
