import NBDProtocol

/// `NBD_CMD_BLOCK_STATUS`: descriptors cover the request without running past the export, flags are the context's,
/// zero extents read as zeros, dirty bitmaps answer for the whole export, and `REQ_ONE` gives one descriptor.
enum BlockStatusChecks {
    static let all: [ProbeCheck] = [
        ProbeCheck("block-status.cover", cover),
        ProbeCheck("block-status.flags", flags),
        ProbeCheck("block-status.zero-reads-zero", zeroReadsZero),
        ProbeCheck("block-status.hole-reads-zero", holeReadsZero),
        ProbeCheck("block-status.dirty-bitmaps", DirtyBitmapWalk.dirtyBitmaps),
        ProbeCheck("block-status.req-one", requestOne),
    ]

    private typealias Sampling = BlockStatusSampling

    /// Every context's descriptors start at the request's offset, none of length 0, all inside the export; they stay
    /// inside the request, except that the final one may extend beyond it (without `REQ_ONE`, the protocol allows it).
    static func cover(_ context: ProbeContext) async throws(ProbeError) -> Verdict {
        if let reason = Sampling.inapplicable(context) { return .skip(reason) }
        let samples = try await Sampling.sample(context)
        let size = context.export.size
        var descriptors = 0
        var beyond = 0
        for sample in samples {
            for (name, entries) in sample.extents.sorted(by: { $0.key < $1.key }) {
                let asked = "block status of \(name) (offset \(sample.offset), length \(sample.length))"
                if let index = entries.firstIndex(where: { $0.length == 0 }) {
                    return .fail("\(asked): descriptor \(index + 1) has length 0; descriptors MUST NOT be empty")
                }
                let lengths = entries.map { UInt64($0.length) }
                let beforeLast = lengths.dropLast().reduce(0, +)
                let end = sample.offset + beforeLast + (lengths.last ?? 0)
                guard beforeLast < UInt64(sample.length) else {
                    return .fail(
                        "\(asked): \(entries.count) descriptors run on to offset \(end); only the final one may extend beyond the request"
                    )
                }
                guard end <= size else {
                    return .fail("\(asked): descriptors run to offset \(end), past the export's end at \(size)")
                }
                if end > sample.offset + UInt64(sample.length) { beyond += 1 }
                descriptors += entries.count
            }
        }
        let note = beyond == 0 ? "" : "; in \(beyond) the final one extends beyond the request, as the protocol allows"
        return .pass("\(counted(samples.count, "range")), \(counted(descriptors, "descriptor"))" + note)
    }

    /// `base:allocation` sets only `NBD_STATE_HOLE` and `NBD_STATE_ZERO` (bits 0-1), a `qemu:dirty-bitmap:` context
    /// only bit 0; other contexts define their own flags and are not judged.
    static func flags(_ context: ProbeContext) async throws(ProbeError) -> Verdict {
        if let reason = Sampling.inapplicable(context) { return .skip(reason) }
        let samples = try await Sampling.sample(context)
        var judged = Set<String>()
        var holesNotZero = 0
        for sample in samples {
            for (name, entries) in sample.extents.sorted(by: { $0.key < $1.key }) {
                let defined: UInt32
                if name == Sampling.baseAllocation {
                    defined = NBDWire.stateHole | NBDWire.stateZero
                    holesNotZero += entries.filter { $0.flags & defined == NBDWire.stateHole }.count
                } else if name.hasPrefix(Sampling.dirtyBitmapPrefix) {
                    defined = NBDWire.stateDirty
                } else {
                    continue
                }
                judged.insert(name)
                if let entry = entries.first(where: { $0.flags & ~defined != 0 }) {
                    return .fail(
                        "\(name) gave flags 0x\(String(entry.flags, radix: 16)) (offset \(sample.offset), length \(sample.length)); only 0x\(String(defined, radix: 16)) are defined for it"
                    )
                }
            }
        }
        let note = holesNotZero == 0 ? "" : "; \(holesNotZero) base:allocation holes not flagged zero (allowed)"
        return .pass(judged.sorted().joined(separator: ", ") + note)
    }

    /// Extents `base:allocation` flags `NBD_STATE_ZERO` read as zeros.
    static func zeroReadsZero(_ context: ProbeContext) async throws(ProbeError) -> Verdict {
        if let reason = Sampling.inapplicable(context) { return .skip(reason) }
        let samples = try await Sampling.sample(context)
        let zeros = Sampling.extents(in: samples, flagged: NBDWire.stateZero, size: context.export.size)
        guard !zeros.isEmpty else { return .skip("no extent in the sampled ranges is flagged NBD_STATE_ZERO") }
        if let failure = try await Sampling.nonZero(zeros, label: "NBD_STATE_ZERO", context) { return .fail(failure) }
        return .pass("\(min(zeros.count, Sampling.extentsRead)) of \(zeros.count) zero extents read back as zeros")
    }

    /// Extents flagged both `NBD_STATE_HOLE` and `NBD_STATE_ZERO` read as zeros; a hole without `NBD_STATE_ZERO` may
    /// hold anything, and is only counted.
    static func holeReadsZero(_ context: ProbeContext) async throws(ProbeError) -> Verdict {
        if let reason = Sampling.inapplicable(context) { return .skip(reason) }
        let samples = try await Sampling.sample(context)
        let size = context.export.size
        let holes = Sampling.extents(in: samples, flagged: NBDWire.stateHole | NBDWire.stateZero, size: size)
        let undefined = Sampling.extents(in: samples, flagged: NBDWire.stateHole, size: size).count - holes.count
        let note = undefined == 0 ? "" : "; \(undefined) holes not flagged zero (their contents are undefined)"
        guard !holes.isEmpty else {
            return .skip("no extent in the sampled ranges is flagged NBD_STATE_HOLE|NBD_STATE_ZERO" + note)
        }
        if let failure = try await Sampling.nonZero(holes, label: "NBD_STATE_HOLE|NBD_STATE_ZERO", context) {
            return .fail(failure)
        }
        return .pass("\(min(holes.count, Sampling.extentsRead)) of \(holes.count) holes read back as zeros" + note)
    }

    /// With `NBD_CMD_FLAG_REQ_ONE`, each context gives exactly one descriptor, no longer than the request.
    static func requestOne(_ context: ProbeContext) async throws(ProbeError) -> Verdict {
        if let reason = Sampling.inapplicable(context) { return .skip(reason) }
        let samples = try await Sampling.sample(context, flags: NBDWire.requestOne)
        for sample in samples {
            for (name, entries) in sample.extents.sorted(by: { $0.key < $1.key }) {
                let asked =
                    "with NBD_CMD_FLAG_REQ_ONE, block status of \(name) (offset \(sample.offset), length \(sample.length))"
                guard entries.count == 1 else {
                    return .fail("\(asked) gave \(entries.count) descriptors; the protocol says exactly one")
                }
                guard entries[0].length <= sample.length else {
                    return .fail("\(asked) gave a descriptor of \(entries[0].length) bytes, longer than the request")
                }
            }
        }
        return .pass(
            "\(counted(samples.count, "range")), one descriptor for each of \(counted(context.export.contexts.count, "context"))"
        )
    }
}
