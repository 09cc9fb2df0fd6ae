/// Host clusters that compressed clusters share, side by side from `first`, and how many compressed clusters
/// overlap each (its refcount, as `qemu-img check` counts references).
struct PackedRun {
    var first: UInt64
    var counts: [UInt16]

    var end: UInt64 { first + UInt64(counts.count) }
}

extension QCOW2Writer {
    // MARK: Compressed clusters

    /// Writes whole clusters at `offset` as ``writeClusters(_:at:)`` does, storing cluster `i` as `compressed[i]`
    /// when that is not nil (a ``ClusterCompressor``'s output for it), as it is otherwise; a partial last cluster is
    /// always stored as it is. An empty `compressed[i]` says the cluster is all zeros: it stays unallocated, or over a
    /// backing file becomes a zero cluster (which hides the backing file's data there).
    ///
    /// Compressed clusters are packed one after the other into host clusters, a compressed cluster running on into the
    /// next host cluster when it does not fit (qcow2 allows it); a host cluster is written once full, or when anything
    /// else is placed. Tables and data are then still appended in file order, hashed as written.
    package func writeCompressed(
        _ compressed: [[UInt8]?], from bytes: UnsafeRawBufferPointer, at offset: UInt64
    ) throws(QCOW2Error) {
        try checkAligned(offset, UInt64(bytes.count))
        let cluster = clusterSize
        try state.withLock { state throws(QCOW2Error) in
            for index in 0..<(bytes.count + cluster - 1) / cluster {
                let guest = offset + UInt64(index * cluster)
                let raw = UnsafeRawBufferPointer(
                    rebasing: bytes[index * cluster..<min((index + 1) * cluster, bytes.count)])
                let packed = index < compressed.count ? compressed[index] : nil
                if let packed, raw.count == cluster, packed.isEmpty {
                    if backingFile != nil { try set(&state, guestOffset: guest, entry: Self.zeroFlag) }
                } else if let packed, raw.count == cluster {
                    try set(&state, guestOffset: guest, entry: try append(packed, &state))
                } else {
                    try closeTail(&state)
                    let host = state.nextCluster * UInt64(cluster)
                    try set(&state, guestOffset: guest, entry: host | Self.copiedFlag)
                    state.nextCluster += 1
                    try file.write(raw, at: host, hashing: true)
                }
            }
        }
    }

    /// Appends one compressed cluster to the tail and returns its L2 entry: the compressed flag, the number of
    /// 512-byte sectors it spans less one, and its byte offset in the file.
    private func append(_ packed: [UInt8], _ state: inout State) throws(QCOW2Error) -> UInt64 {
        if state.tail == nil {
            state.tail = (state.nextCluster, [])
            state.nextCluster += 1
        }
        guard var tail = state.tail else { return 0 }
        let host = tail.cluster * UInt64(clusterSize) + UInt64(tail.bytes.count)
        let last = host + UInt64(packed.count) - 1
        count(clusters: host / UInt64(clusterSize)...last / UInt64(clusterSize), &state)
        tail.bytes += packed
        while tail.bytes.count >= clusterSize {
            try file.write(Array(tail.bytes[..<clusterSize]), at: tail.cluster * UInt64(clusterSize))
            tail.bytes.removeFirst(clusterSize)
            // Nothing else is placed while the tail is open: the next cluster is the tail's neighbour.
            tail.cluster = state.nextCluster
            state.nextCluster += 1
        }
        if tail.bytes.isEmpty {
            state.nextCluster -= 1  // the cluster the tail moved on to holds nothing yet
            state.tail = nil
        } else {
            state.tail = tail
        }
        let sectors = (last >> 9) - (host >> 9)
        let clusterBits = UInt64(clusterSize.trailingZeroBitCount)
        return Self.compressedFlag | sectors << (62 - (clusterBits - 8)) | host
    }

    /// Counts one more compressed cluster in each of `clusters`, which continue the last run or start one.
    private func count(clusters: ClosedRange<UInt64>, _ state: inout State) {
        if state.packed.last.map({ $0.end < clusters.lowerBound }) ?? true {
            state.packed.append(PackedRun(first: clusters.lowerBound, counts: []))
        }
        let index = state.packed.count - 1
        for cluster in clusters {
            let offset = Int(cluster - state.packed[index].first)
            if offset == state.packed[index].counts.count { state.packed[index].counts.append(0) }
            state.packed[index].counts[offset] += 1
        }
    }

    /// Writes the tail's host cluster, padded with zeros, if one is open.
    func closeTail(_ state: inout State) throws(QCOW2Error) {
        guard let tail = state.tail else { return }
        state.tail = nil
        var bytes = tail.bytes
        bytes += [UInt8](repeating: 0, count: clusterSize - bytes.count)
        try file.write(bytes, at: tail.cluster * UInt64(clusterSize))
    }

    static let compressedFlag: UInt64 = 1 << 62
}
