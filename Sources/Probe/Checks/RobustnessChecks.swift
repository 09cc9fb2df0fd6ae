import NBDProtocol
import NIOCore

/// What a server must survive: clients that go away in the middle of a request. Each is judged by a fresh connection
/// afterwards, which must negotiate and read what it read before.
enum RobustnessChecks {
    static let all: [ProbeCheck] = [
        ProbeCheck("robustness.disconnect-mid-request", disconnectMidRequest)
    ]

    /// How long the server is given to handle the hostile clients' disconnections before the fresh connection: a
    /// server that dies of them would otherwise still answer it.
    static let settle: Duration = .milliseconds(200)

    /// A client that sends half a request header and disconnects, one that sends a read and disconnects before its
    /// reply, and (with `--write`) one that disconnects in the middle of a write's data: the first block then reads on
    /// a fresh connection as it read before them.
    static func disconnectMidRequest(_ context: ProbeContext) async throws(ProbeError) -> Verdict {
        guard let first = ScratchRange(context.export, upTo: 4096) else {
            return .skip("the export holds no whole block")
        }
        let before = try await context.withConnection { (connection, export) throws(ProbeError) in
            try await connection.read(first, on: export)
        }
        var hostile: [(String, (ProbeContext) async throws(ProbeError) -> Void)] = [
            ("half a request header", halfHeader), ("a read left unanswered", unansweredRead),
        ]
        if context.options.write, !context.export.has(NBDWire.readOnly),
            let second = ScratchRange(context.export, offset: UInt64(first.length), upTo: 64 << 10)
        {
            hostile.append(
                ("half a write's data", { (context) throws(ProbeError) in try await halfWrite(context, second) }))
        }
        var gone: [String] = []
        let after: [UInt8]
        do throws(ProbeError) {
            for (label, client) in hostile {
                try await client(context)
                gone.append(label)
            }
            try? await Task.sleep(for: settle)
            after = try await context.withConnection { (connection, export) throws(ProbeError) in
                try await connection.read(first, on: export)
            }
        } catch {
            return .fail(
                "after clients that disconnected mid-request (\(gone.joined(separator: ", "))), a new connection fails: \(error.message); a server outlives its clients"
            )
        }
        guard after == before else {
            return .fail(
                "after clients that disconnected mid-request, \(first) reads differently on a fresh connection \(firstDifference(after, before))"
            )
        }
        return .pass("survived \(gone.joined(separator: ", ")); \(first) reads as before")
    }

    /// Enters transmission, sends the first 12 of a read request's 28 header bytes, and disconnects.
    static func halfHeader(_ context: ProbeContext) async throws(ProbeError) {
        let (connection, _) = try await context.connect()
        var half = ByteBuffer()
        half.writeInteger(NBDWire.requestMagic)
        half.writeInteger(UInt16(0))
        half.writeInteger(NBDWire.Command.read.rawValue)
        half.writeInteger(UInt32(0))
        try? await connection.send(half)
        await connection.close()
    }

    /// Enters transmission, sends a read of up to 4 MiB, and disconnects without reading the reply: the server finds
    /// the connection gone while it answers.
    static func unansweredRead(_ context: ProbeContext) async throws(ProbeError) {
        let (connection, export) = try await context.connect()
        if let range = ScratchRange(export, upTo: 4 << 20) {
            try? await connection.send(range.request(.read), cookie: 1)
        }
        await connection.close()
    }

    /// Enters transmission, sends a write request for `range` with only the first half of its data, and disconnects.
    static func halfWrite(_ context: ProbeContext, _ range: ScratchRange) async throws(ProbeError) {
        let (connection, _) = try await context.connect()
        var request = range.request(.write, payload: range.pattern())
        request.payload = request.payload?.getSlice(at: 0, length: Int(range.length / 2))
        try? await connection.send(request, cookie: 1)
        await connection.close()
    }
}
