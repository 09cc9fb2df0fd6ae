import NBDProtocol

/// `read.connections-agree`: the same ranges, read on `--connections` connections at once, give the same bytes.
enum ReadAgreement {
    /// What one connection read: the bytes of each range, or why it could not.
    private enum Reads: Sendable {
        case bytes([[UInt8]])
        case failed(String)
    }

    /// About 8 ranges of 64 KiB spread over the export, read on every connection at once, compared byte for byte.
    static func connectionsAgree(_ context: ProbeContext) async throws(ProbeError) -> Verdict {
        let count = context.options.connections
        guard count >= 2 else { return .skip("--connections \(count): one connection has nothing to agree with") }
        let length = context.export.readLength(about: 64 << 10)
        guard length > 0 else { return .skip(ReadChecks.tooShort(context.export)) }
        let offsets = context.export.spreadOffsets(8, length: UInt64(length))
        // Every connection is negotiated before any reads, so that the reads run at once.
        var connections: [(ProbeConnection, NegotiatedExport)] = []
        var limited = ""
        do throws(ProbeError) {
            for _ in 0..<count {
                do throws(ProbeError) {
                    connections.append(try await context.connect())
                } catch  where connections.count >= 2 && (error.code == .timedOut || error.code == .closed) {
                    // A server may cap its clients (qemu-nbd -e): compare the connections it took.
                    limited = "; the server took only \(connections.count) at once (\(error.message))"
                    break
                }
            }
        } catch {
            for (connection, _) in connections { await connection.close() }
            throw error
        }
        let verdict = await compare(offsets, length: length, on: connections, limited: limited)
        for (connection, export) in connections { await connection.disconnect(export) }
        return verdict
    }

    /// Reads `offsets` on every connection at once and compares what they read.
    private static func compare(
        _ offsets: [UInt64], length: UInt32, on connections: [(ProbeConnection, NegotiatedExport)], limited: String
    ) async -> Verdict {
        let opened = connections.count
        let reads = await withTaskGroup(of: (Int, Reads).self) { group in
            for (index, (connection, export)) in connections.enumerated() {
                group.addTask { (index, await read(offsets, length: length, on: connection, export)) }
            }
            var reads = [Reads](repeating: .bytes([]), count: opened)
            for await (index, result) in group { reads[index] = result }
            return reads
        }
        var first: [[UInt8]] = []
        for (index, result) in reads.enumerated() {
            switch result {
            case .failed(let reason): return .fail("on connection \(index + 1) of \(opened), \(reason)")
            case .bytes(let ranges) where index == 0: first = ranges
            case .bytes(let ranges):
                for (range, offset) in offsets.enumerated() where ranges[range] != first[range] {
                    return .fail(
                        "a read (offset \(offset), length \(length)) gives other bytes on connection \(index + 1) than on connection 1, \(firstDifference(ranges[range], first[range])); every connection reads the same export"
                    )
                }
            }
        }
        return .pass(
            "\(counted(offsets.count, "range")) of \(counted(Int(length), "byte")), identical on \(opened) connections"
                + limited)
    }

    /// The bytes of each range read in turn on `connection`, or why a read went wrong.
    private static func read(
        _ offsets: [UInt64], length: UInt32, on connection: ProbeConnection, _ export: NegotiatedExport
    ) async -> Reads {
        var ranges: [[UInt8]] = []
        for offset in offsets {
            do throws(ProbeError) {
                let outcome = try await connection.read(offset: offset, length: length, on: export)
                if let failure = ReadChecks.failure(of: outcome, offset: offset, length: length) {
                    return .failed(failure)
                }
                if case .data(let bytes) = outcome { ranges.append(bytes) }
            } catch {
                return .failed(error.message)
            }
        }
        return .bytes(ranges)
    }
}
