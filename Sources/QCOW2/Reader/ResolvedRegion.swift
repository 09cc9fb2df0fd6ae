/// A stretch of a chain's disk and the one layer run it reads from: the chain's view of a region, resolved once.
struct ResolvedRun: Sendable {
    /// The run of the deciding layer, cut to the stretch; `.unallocated` where no layer has the bytes.
    var run: LayerRun
    /// The index of the deciding layer; nil when no layer has the bytes (or they lie past a shorter backing file). A
    /// raw base's hole is decided by the raw layer, as qemu counts it.
    var layer: Int?
}

/// Resolves a region of a chain top-down into the runs that decide it.
///
/// Each layer is walked once over what is still undecided (its unallocated stretches skip in one step), and what it
/// decides is cut out of the undecided list, so that a region costs one walk of each layer's tables there plus the
/// merge of its runs, however the layers' allocations interleave. Descending layer by layer for each unallocated run
/// instead costs a table lookup per run per layer below it, again on every read: a chain of a thousand small
/// incrementals spent seconds per megabyte that way.
enum RegionResolver {
    static func resolve(_ region: Range<UInt64>, images: [LayerImage]) throws(QCOW2Error) -> [ResolvedRun] {
        var undecided: [Range<UInt64>] = region.isEmpty ? [] : [region]
        var resolved: [ResolvedRun] = []
        for (index, image) in images.enumerated() {
            guard let first = undecided.first, let last = undecided.last else { break }
            let isBase = index == images.count - 1
            // Past a layer's end the bytes read as zeros, decided by no layer: nothing below is asked.
            let end = min(last.upperBound, max(first.lowerBound, image.virtualSize))
            let runs = try runs(of: image, over: undecided, below: end)
            var still: [Range<UInt64>] = []
            var next = 0
            for hole in undecided {
                if hole.upperBound > end {
                    let past = max(hole.lowerBound, end)..<hole.upperBound
                    resolved.append(
                        ResolvedRun(
                            run: LayerRun(offset: past.lowerBound, length: UInt64(past.count), mapping: .unallocated),
                            layer: nil))
                }
                let inside = hole.lowerBound..<max(hole.lowerBound, min(hole.upperBound, end))
                guard !inside.isEmpty else { continue }
                while next < runs.count, runs[next].end <= inside.lowerBound { next += 1 }
                var scan = next
                while scan < runs.count, runs[scan].offset < inside.upperBound {
                    let piece = runs[scan].cut(to: inside)
                    switch piece.mapping {
                    case .unallocated where !isBase:
                        still.append(piece.offset..<piece.end)
                    case .unallocated:
                        let decided: Int? = if case .raw = image { index } else { nil }
                        resolved.append(ResolvedRun(run: piece, layer: decided))
                    default:
                        resolved.append(ResolvedRun(run: piece, layer: index))
                    }
                    scan += 1
                }
            }
            undecided = still
        }
        return resolved.sorted { $0.run.offset < $1.run.offset }
    }

    /// The runs of `image` that cover the `undecided` stretches below `end`, in order: one walk over their whole span,
    /// or, when that meets a damaged table, one walk per stretch, so that only a read of the damaged part fails (what
    /// upper layers decide is never read below them).
    private static func runs(of image: LayerImage, over undecided: [Range<UInt64>], below end: UInt64)
        throws(QCOW2Error) -> [LayerRun]
    {
        guard let start = undecided.first?.lowerBound, start < end else { return [] }
        var runs: [LayerRun] = []
        do {
            try image.forEachRun(in: start..<end) { run throws(QCOW2Error) in runs.append(run) }
            return runs
        } catch {
            runs = []
            for hole in undecided where hole.lowerBound < end {
                try image.forEachRun(in: hole.lowerBound..<min(hole.upperBound, end)) { run throws(QCOW2Error) in
                    runs.append(run)
                }
            }
            return runs
        }
    }
}

extension LayerRun {
    /// The part of the run inside `range` (which must overlap it), its host offset moved along for data.
    func cut(to range: Range<UInt64>) -> LayerRun {
        let start = max(offset, range.lowerBound)
        let stop = min(end, range.upperBound)
        var cutMapping = mapping
        if case .data(let host) = mapping { cutMapping = .data(hostOffset: host + (start - offset)) }
        return LayerRun(offset: start, length: stop - start, mapping: cutMapping)
    }
}
