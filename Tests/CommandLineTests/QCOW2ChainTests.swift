import Foundation
import Testing

extension CopyIntegration {
    /// Chains of qcow2 points: a full copy, then overlays made with `--bitmap NAME --backing PARENT`, all in one
    /// directory. Each point is judged by qemu-img against a raw reference of the source taken when the point was
    /// made (the source keeps changing).
    @Suite("qcow2 overlay chains", .serialized)
    struct QCOW2ChainTests {
        /// One point of a chain: its image and what the source held when it was made.
        struct Point {
            var image: String
            let reference: String
        }

        /// More writes on top of `GuestWrites`: zeros over data every earlier point holds, data across clusters over
        /// old data, the first byte, zeros over the last byte.
        static let thirdRound = [
            "write -z 512k 256k",  // over the base's 0x11 and round one's 0x22
            "write -P 0x41 9961472 70000",  // across two cluster boundaries, over zeros of round two
            "write -P 0x42 0 1",  // the first byte, inside round one's zeros
            "write -z 67108800 64",  // zeros over round one's last byte
            "discard 4M 64k",  // round one's data
        ]

        /// Serves the source with `bitmap`, reads the bitmap's dirty extents, and makes an overlay at `overlay` backed
        /// by `parent`. Returns pullback's result (checked) and the dirty extents.
        static func makeOverlay(
            _ fx: Fixture, source: QCOW2Image, bitmap: String, parent: String, overlay: String
        ) async throws -> (stats: CopyStats, dirty: [Range<Int64>]) {
            let server = try await source.serve(bitmap: bitmap)
            let dirty = try await NBDInfo.dirtyRanges(server.uri(), bitmap: bitmap, using: fx)
            let result = try await Pullback.copy(
                fx,
                [server.uri(), overlay, "--format", "qcow2", "--bitmap", bitmap, "--backing", parent, "--json"])
            server.stop()
            try requireSuccess(result)
            let stats = try CopyStats.decode(stdout: result.stdout)
            #expect(stats.mode == "incremental" && stats.format == "qcow2", "\(stats)")
            return (stats, dirty)
        }

        /// Judges the newest point of `points`: `qemu-img check` clean, identical to its reference, the whole chain in
        /// `qemu-img info --backing-chain` with relative backing names and qcow2 backing formats, and (for an
        /// overlay) its own layer only inside the dirty clusters.
        static func verifyTop(
            _ fx: Fixture,
            _ points: [Point],
            size: Int,
            dirty: [Range<Int64>]?,
            sourceLocation: SourceLocation = #_sourceLocation
        ) async throws {
            let top = points[points.count - 1]
            try await Qemu.expectCheckClean(fx, top.image, sourceLocation: sourceLocation)
            try await Qemu.expectIdentical(fx, top.image, top.reference, sourceLocation: sourceLocation)

            let chain = try await Qemu.chain(top.image, using: fx)
            let names = chain.map { ($0.filename as NSString).lastPathComponent }
            let expected = points.reversed().map { ($0.image as NSString).lastPathComponent }
            #expect(names == expected, "backing chain \(names) instead of \(expected)", sourceLocation: sourceLocation)
            for (index, layer) in chain.enumerated() {
                #expect(
                    layer.format == "qcow2" && layer.virtualSize == Int64(size), "\(layer)",
                    sourceLocation: sourceLocation)
                if index == chain.count - 1 {
                    #expect(layer.backingFilename == nil, "the full copy has a backing file: \(layer)")
                    continue
                }
                let backing = layer.backingFilename ?? ""
                #expect(
                    backing == expected[index + 1],
                    "\(layer.filename) has backing file name '\(backing)', expected the sibling \(expected[index + 1])",
                    sourceLocation: sourceLocation)
                #expect(
                    !backing.hasPrefix("/"), "absolute backing file name \(backing)", sourceLocation: sourceLocation)
                #expect(layer.backingFilenameFormat == "qcow2", "\(layer)", sourceLocation: sourceLocation)
            }

            guard let dirty else { return }
            let map = try await Qemu.map(top.image, using: fx)
            let own = map.filter { $0.depth == 0 && $0.present }
            let ownClusters = Qemu.clusters(own.map(\.range))
            let dirtyClusters = Qemu.clusters(dirty)
            let outside = ownClusters.subtracting(dirtyClusters).sorted()
            #expect(
                outside.isEmpty, "the overlay holds clean clusters \(outside.prefix(20)) (dirty: \(dirty))",
                sourceLocation: sourceLocation)
            let dataBytes = own.filter(\.data).reduce(Int64(0)) { $0 + $1.length }
            let dirtyBytes = Int64(dirtyClusters.count) * Qemu.clusterSize
            #expect(
                dataBytes <= dirtyBytes, "overlay data \(dataBytes) bytes > \(dirtyBytes) dirty bytes in clusters",
                sourceLocation: sourceLocation)
            // The file itself: the data plus a little metadata.
            let fileSize = try FileFacts.size(top.image)
            #expect(
                fileSize <= dataBytes + Int64(mib), "overlay file is \(fileSize) bytes for \(dataBytes) bytes of data",
                sourceLocation: sourceLocation)
        }

        /// Full copy into `chain/0-full.qcow2`, then one overlay per round. `bitmapPerRound`: a new bitmap after each
        /// point (each overlay holds one round); otherwise b0 stays and each overlay holds everything since the
        /// full copy.
        static func runChain(bitmapPerRound: Bool) async throws {
            try await Fixture.run { fx in
                let size = 64 * mib
                let image = try await QCOW2Image.create(fx, size: size)
                try await image.io(GuestWrites.base)
                let chain = try fx.makeDirectory("chain")

                let full = chain + "/0-full.qcow2"
                let server = try await image.serve()
                try requireSuccess(try await Pullback.copy(fx, [server.uri(), full, "--format", "qcow2"]))
                server.stop()
                try await image.addBitmap("b0")
                var points = [Point(image: full, reference: try await image.rawReference(name: "ref-0.raw"))]
                try await verifyTop(fx, points, size: size, dirty: nil)

                let rounds = [GuestWrites.firstRound, GuestWrites.secondRound, thirdRound]
                for (index, round) in rounds.enumerated() {
                    let number = index + 1
                    try await image.io(round)
                    let reference = try await image.rawReference(name: "ref-\(number).raw")
                    let bitmap = bitmapPerRound ? "b\(index)" : "b0"
                    let overlay = chain + "/\(number)-overlay.qcow2"
                    let made = try await makeOverlay(
                        fx, source: image, bitmap: bitmap, parent: points[points.count - 1].image, overlay: overlay)
                    points.append(Point(image: overlay, reference: reference))
                    try await verifyTop(fx, points, size: size, dirty: made.dirty)
                    #expect(made.stats.zeroBytes > 0, "each round zeroes data: \(made.stats)")
                    if bitmapPerRound {
                        try await image.addBitmap("b\(number)")
                        try await image.removeBitmap(bitmap)
                    }
                }

                // Making overlays never changed an earlier point.
                for point in points {
                    try await Qemu.expectCheckClean(fx, point.image)
                    try await Qemu.expectIdentical(fx, point.image, point.reference)
                }
                // The top, converted, is byte for byte the source now.
                let top = fx.path("top.raw")
                try await Qemu.convertToRaw(points[points.count - 1].image, to: top, using: fx)
                try await expectSameBytes(fx, top, points[points.count - 1].reference)
                #expect(try FileFacts.listing(chain) == points.map { ($0.image as NSString).lastPathComponent })
            }
        }

        @Test("One cumulative bitmap b0: full copy and three overlays, each identical", .timeLimit(.minutes(1)))
        func cumulativeBitmap() async throws {
            try await Self.runChain(bitmapPerRound: false)
        }

        @Test("A new bitmap per point: full copy and three overlays, each holding one round", .timeLimit(.minutes(1)))
        func bitmapPerPoint() async throws {
            try await Self.runChain(bitmapPerRound: true)
        }

        @Test(
            "Ten points deep, every point identical; the moved chain still reads the same", .timeLimit(.minutes(2)))
        func tenDeepAndMoved() async throws {
            try await Fixture.run { fx in
                let size = 16 * mib
                let image = try await QCOW2Image.create(fx, size: size)
                try await image.io("write -P 0x10 0 2M", "write -P 0x1f 12M 1M")
                let chain = try fx.makeDirectory("chain")
                let full = chain + "/p0.qcow2"
                let server = try await image.serve()
                try requireSuccess(try await Pullback.copy(fx, [server.uri(), full, "--format", "qcow2"]))
                server.stop()
                try await image.addBitmap("b0")
                var points = [Point(image: full, reference: try await image.rawReference(name: "ref-0.raw"))]

                for number in 1...9 {
                    let at = number * mib + number * 4099
                    var writes = ["write -P \(0x40 + number) \(at) 5000"]  // crosses a cluster boundary sometimes
                    if number > 1 {
                        // Zeros inside the previous round's data.
                        writes.append("write -z \((number - 1) * mib + (number - 1) * 4099 + 1000) 100")
                    }
                    if number % 3 == 0 {
                        writes.append("discard \(number / 3 * 512 * kib) 64k")  // the base's data
                    }
                    if number % 4 == 0 {
                        writes.append("write -z \(12 * mib + number * 64 * kib) 64k")  // the base's data, in full
                    }
                    writes.append("write -P \(0x60 + number) \(size - number) 1")  // near the end
                    try await image.io(writes)
                    let reference = try await image.rawReference(name: "ref-\(number).raw")
                    let overlay = chain + "/p\(number).qcow2"
                    let bitmap = "b\(number - 1)"
                    let made = try await Self.makeOverlay(
                        fx, source: image, bitmap: bitmap, parent: points[points.count - 1].image, overlay: overlay)
                    points.append(Point(image: overlay, reference: reference))
                    try await Self.verifyTop(fx, points, size: size, dirty: made.dirty)
                    try await image.addBitmap("b\(number)")
                    try await image.removeBitmap(bitmap)
                }
                for point in points {
                    try await Qemu.expectIdentical(fx, point.image, point.reference)
                }

                // Move the whole directory: relative backing names still find every parent.
                let moved = try fx.makeDirectory("elsewhere") + "/chain-moved"
                try FileManager.default.moveItem(atPath: chain, toPath: moved)
                #expect(!FileFacts.exists(chain))
                for index in points.indices {
                    points[index].image = moved + "/" + (points[index].image as NSString).lastPathComponent
                }
                let top = points[points.count - 1].image
                try await Qemu.expectCheckClean(fx, top)
                try await Self.verifyTop(fx, points, size: size, dirty: nil)
                let layers = try await Qemu.chain(top, using: fx)
                for layer in layers.dropLast() {
                    let full = layer.fullBackingFilename ?? ""
                    #expect(full.hasPrefix(moved + "/"), "backing resolved to \(full), not inside \(moved)")
                }
                for point in points {
                    try await Qemu.expectIdentical(fx, point.image, point.reference)
                }
                let topRaw = fx.path("top.raw")
                try await Qemu.convertToRaw(top, to: topRaw, using: fx)
                try await expectSameBytes(fx, topRaw, points[points.count - 1].reference)
            }
        }
    }
}
