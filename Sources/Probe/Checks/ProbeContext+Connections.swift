extension ProbeContext {
    /// Runs `body` on `count` connections open at once, each negotiated as `plan` says, and disconnects them all after,
    /// whether `body` returns or throws.
    func withConnections<T: Sendable>(
        _ count: Int, _ plan: NegotiationPlan? = nil,
        _ body: ([(ProbeConnection, NegotiatedExport)]) async throws(ProbeError) -> T
    ) async throws(ProbeError) -> T {
        var connections: [(ProbeConnection, NegotiatedExport)] = []
        do throws(ProbeError) {
            for _ in 0..<count { connections.append(try await connect(plan)) }
            let value = try await body(connections)
            for (connection, export) in connections { await connection.disconnect(export) }
            return value
        } catch {
            for (connection, _) in connections { await connection.close() }
            throw error
        }
    }
}
