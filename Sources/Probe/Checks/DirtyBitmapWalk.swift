import NBDProtocol

/// `block-status.dirty-bitmaps`: each `qemu:dirty-bitmap:` context the server lists answers for the whole export.
enum DirtyBitmapWalk {
    /// The most requests one walk sends; past them, the walk asks about the export's last block and stops.
    static let requestLimit = 256

    /// Sets each listed dirty bitmap (up to 8) alone, and walks its extents from offset 0 to the export's end, each
    /// reply starting where the last ended.
    static func dirtyBitmaps(_ context: ProbeContext) async throws(ProbeError) -> Verdict {
        if let reason = BlockStatusSampling.inapplicable(context) { return .skip(reason) }
        let bitmaps = context.listedContexts.filter { $0.hasPrefix(BlockStatusSampling.dirtyBitmapPrefix) }
        guard !bitmaps.isEmpty else { return .skip("the server lists no qemu:dirty-bitmap: context") }
        var notes: [String] = []
        for name in bitmaps.prefix(8) {
            let plan = BlockStatusSampling.plan(context, contexts: [name])
            let verdict = try await context.withConnection(plan) { (connection, export) throws(ProbeError) -> Verdict in
                guard Array(export.contexts.values) == [name] else {
                    return .fail(
                        "NBD_OPT_SET_META_CONTEXT of listed \"\(name)\" set \(export.contexts.values.sorted())")
                }
                return try await walk(name, on: connection, export)
            }
            guard case .pass(let note) = verdict else { return verdict }
            notes.append("\(name): \(note ?? "")")
        }
        return .pass(notes.joined(separator: "; "))
    }

    /// Walks `name`'s extents from 0 to the export's end.
    private static func walk(_ name: String, on connection: ProbeConnection, _ export: NegotiatedExport)
        async throws(ProbeError) -> Verdict
    {
        var offset: UInt64 = 0
        var requests = 0
        var dirty: UInt64 = 0
        while offset < export.size, requests < requestLimit {
            let length = export.alignedDown(min(export.size - offset, BlockStatusSampling.longestQuery))
            guard length > 0 else { break }
            let asked = "block status of \(name) (offset \(offset), length \(length))"
            switch try await connection.blockStatus(offset: offset, length: UInt32(length), on: export) {
            case .refused(_, let summary):
                return .fail("\(asked) failed with \(summary)")
            case .extents(let extents):
                let entries = extents[name] ?? []
                if entries.contains(where: { $0.length == 0 }) {
                    return .fail("\(asked) gave a descriptor of length 0; a walk cannot go on")
                }
                let end = offset + entries.reduce(0) { $0 + UInt64($1.length) }
                guard end <= export.size else {
                    return .fail("\(asked) ran to offset \(end), past the export's end at \(export.size)")
                }
                dirty += entries.filter { $0.flags & NBDWire.stateDirty != 0 }.reduce(0) { $0 + UInt64($1.length) }
                offset = end
            }
            requests += 1
        }
        guard offset < export.size, requests == requestLimit else {
            return .pass(
                "\(counted(requests, "request")) to offset \(offset) of \(export.size), \(dirty) bytes dirty"
            )
        }
        let last = export.alignedDown(export.size - export.minimumBlock)
        let length = UInt32(export.size - last)
        if case .refused(_, let summary) = try await connection.blockStatus(
            offset: last, length: length, on: export)
        {
            return .fail(
                "block status of \(name) for the last block (offset \(last)) failed with \(summary)"
            )
        }
        return .pass("walked to offset \(offset) in \(requests) requests; the last block answers too")
    }
}
