import NBD
import NBDProtocol

/// One block status reply to a range the probe asked about.
struct ExtentSample: Sendable {
    var offset: UInt64
    var length: UInt32
    /// The descriptors of each meta context, by its name.
    var extents: [String: [BlockStatusEntry]]

    /// The extents `context` gave, placed from the request's offset, cut at the export's end `size`.
    func extents(of context: String, size: UInt64) -> [BlockStatusExtent] {
        var offset = self.offset
        var placed: [BlockStatusExtent] = []
        for entry in extents[context] ?? [] where offset < size {
            placed.append(
                BlockStatusExtent(offset: offset, length: min(UInt64(entry.length), size - offset), flags: entry.flags))
            offset += UInt64(entry.length)
        }
        return placed
    }
}

/// What the block status checks share: when they apply, the ranges they ask about, and reading extents back.
enum BlockStatusSampling {
    static let baseAllocation = "base:allocation"
    static let dirtyBitmapPrefix = "qemu:dirty-bitmap:"
    /// The longest range one block status request asks about (a 1 GiB export in one request).
    static let longestQuery: UInt64 = 1 << 30
    /// The most extents read back, and the bytes read at each end of one.
    static let extentsRead = 8
    static let bytesReadAtEachEnd: UInt64 = 64 << 10

    /// Why the block status checks do not apply; nil when they do.
    static func inapplicable(_ context: ProbeContext) -> String? {
        guard context.export.structuredReplies else { return "no structured replies, so no block status" }
        guard context.export.contexts.values.contains(baseAllocation) else {
            return "the server does not set base:allocation"
        }
        guard context.export.size >= context.export.minimumBlock else {
            return "the export (\(context.export.size) bytes) is shorter than a block"
        }
        return nil
    }

    /// A handshake setting `contexts`, or every context the first handshake set.
    static func plan(_ context: ProbeContext, contexts: [String]? = nil) -> NegotiationPlan {
        var plan = NegotiationPlan(export: context.uri.exportName)
        plan.metaContexts = contexts ?? context.export.contexts.values.sorted()
        return plan
    }

    /// The ranges asked about: from the start (up to 1 GiB), 64 MiB from the middle, and the last MiB; aligned.
    static func ranges(_ export: NegotiatedExport) -> [(offset: UInt64, length: UInt32)] {
        var ranges: [(offset: UInt64, length: UInt32)] = []
        func add(_ offset: UInt64, _ wanted: UInt64) {
            let length = export.alignedDown(min(wanted, export.size - offset, longestQuery))
            if length > 0, !ranges.contains(where: { $0.offset == offset }) { ranges.append((offset, UInt32(length))) }
        }
        add(0, export.size)
        add(export.alignedDown(export.size / 2), 64 << 20)
        add(export.alignedDown(export.size - min(export.size, 1 << 20)), 1 << 20)
        return ranges
    }

    /// The replies to each of ``ranges(_:)``, asked with `flags` on one connection setting every context; a refusal
    /// is a failure: each range lies inside the export.
    static func sample(_ context: ProbeContext, flags: UInt16 = 0) async throws(ProbeError) -> [ExtentSample] {
        try await context.withConnection(plan(context)) { (connection, export) throws(ProbeError) -> [ExtentSample] in
            var samples: [ExtentSample] = []
            for (offset, length) in ranges(export) {
                switch try await connection.blockStatus(offset: offset, length: length, flags: flags, on: export) {
                case .extents(let extents):
                    samples.append(ExtentSample(offset: offset, length: length, extents: extents))
                case .refused(_, let summary):
                    throw ProbeError(
                        .protocolViolation,
                        "NBD_CMD_BLOCK_STATUS inside the export (offset \(offset), length \(length)) failed with \(summary)"
                    )
                }
            }
            return samples
        }
    }

    /// The `base:allocation` extents of `samples` whose flags include all of `flags`, once each, by offset.
    static func extents(in samples: [ExtentSample], flagged flags: UInt32, size: UInt64) -> [BlockStatusExtent] {
        var byOffset: [UInt64: BlockStatusExtent] = [:]
        for sample in samples {
            for extent in sample.extents(of: baseAllocation, size: size) where extent.flags & flags == flags {
                byOffset[extent.offset] = extent
            }
        }
        return byOffset.values.sorted { $0.offset < $1.offset }
    }

    /// Why one of `extents` (which must read as zeros, being flagged `label`) does not: up to ``extentsRead`` of them,
    /// spread out, are read for up to 64 KiB at each end (in whole blocks inside the extent). Nil when all are zeros.
    static func nonZero(_ extents: [BlockStatusExtent], label: String, _ context: ProbeContext) async throws(ProbeError)
        -> String?
    {
        let chosen = stride(from: 0, to: extents.count, by: max(1, extents.count / extentsRead)).prefix(extentsRead)
            .map { extents[$0] }
        return try await context.withConnection { (connection, export) throws(ProbeError) -> String? in
            let window = UInt64(export.readLength(about: bytesReadAtEachEnd))
            for extent in chosen {
                let start = export.alignedUp(extent.offset)
                let end = export.alignedDown(extent.offset + extent.length)
                guard end > start, window > 0 else { continue }
                for offset in Set([start, max(start, end - min(window, end - start))]).sorted() {
                    let length = UInt32(min(window, end - offset))
                    let outcome = try await connection.read(offset: offset, length: length, on: export)
                    if let failure = ReadChecks.failure(of: outcome, offset: offset, length: length) {
                        return failure + ", inside an extent flagged \(label)"
                    }
                    if case .data(let bytes) = outcome, let index = bytes.firstIndex(where: { $0 != 0 }) {
                        return
                            "base:allocation flags offset \(extent.offset) (length \(extent.length)) \(label), but offset \(offset + UInt64(index)) reads 0x\(String(bytes[index], radix: 16)); such extents MUST read as zeros"
                    }
                }
            }
            return nil
        }
    }
}
