import NBD
import Synchronization

/// An NBD export as a block source: extents from `base:allocation` and an optional dirty bitmap, reads
/// spread round-robin over one or more connections.
///
/// A read or block status request that fails for a reason that may pass (EIO, a dropped connection) is tried
/// again as `retry` says, over a new connection when the old one is gone; one that cannot get better (EPERM, a
/// range past the end, a stall) fails at once.
public final class NBDBlockSource: BlockSource {
    /// The export's URI, for messages.
    public let uri: String
    /// The dirty bitmap whose dirty ranges are reported, if any.
    public let bitmap: String?
    /// What the first connection learnt: every new connection must show the same export.
    private let info: ExportInfo
    private let slots: [ConnectionSlot]
    private let nextConnection = Atomic<Int>(0)
    private let retry: RetryPolicy
    private let stallTimeout: Duration?
    private let retryCount = Atomic<Int>(0)

    public var size: UInt64 { info.size }
    public var maximumReadSize: Int { info.maximumRequestSize }
    public var connectionCount: Int { slots.count }
    /// Requests tried again so far, over all connections.
    public var retries: Int { retryCount.load(ordering: .relaxed) }

    private init(
        uri: String, bitmap: String?, connections: [NBDConnection], retry: RetryPolicy, stallTimeout: Duration?
    ) {
        self.uri = uri
        self.bitmap = bitmap
        self.info = connections[0].info
        self.slots = connections.map(ConnectionSlot.init)
        self.retry = retry
        self.stallTimeout = stallTimeout
    }

    /// Opens `uri`, checks that the server offers `bitmap`, and opens up to `connections` connections when
    /// the server allows several (multi-conn), else one. Runs `body` and closes everything afterwards.
    ///
    /// The first connection is not retried: a server that cannot be reached at the start is a mistake to report
    /// at once. Later requests follow `retry`; with a `stallTimeout`, a connection whose requests get no reply for
    /// that long fails the copy.
    static func withSource<Result: Sendable>(
        uri: String, bitmap: String?, connections: Int, retry: RetryPolicy = RetryPolicy(),
        stallTimeout: Duration? = nil, _ body: (NBDBlockSource) async throws(CopyError) -> Result
    ) async throws(CopyError) -> Result {
        let first: NBDConnection
        do {
            first = try await NBDConnection.connect(
                uri: uri, metaContexts: metaContexts(bitmap: bitmap), stallTimeout: stallTimeout)
        } catch  where error.code == .untrustedServer {
            throw CopyError(.source, error.message, cause: error)  // running and reached: only not to be trusted
        } catch  where error.code == .stalled {
            throw CopyError(.source, "\(error.message) (--stall-timeout); check the NBD server", cause: error)
        } catch {
            throw CopyError(
                .source, "\(error.message); check that the NBD server is running and the URI is right", cause: error)
        }
        var opened = [first]
        do throws(CopyError) {
            if let bitmap, !first.info.metaContexts.contains(MetaContext.dirtyBitmap(bitmap)) {
                throw CopyError(
                    .unsupported,
                    "the NBD server does not offer dirty bitmap '\(bitmap)' on \(uri); check the name (nbdinfo --list shows what it offers), or copy without --bitmap for a full copy"
                )
            }
            if first.info.canMultiConn {
                for _ in 1..<max(1, connections) {
                    do {
                        opened.append(try await NBDConnection.connect(uri: uri, stallTimeout: stallTimeout))
                    } catch {
                        throw CopyError(
                            .source, "cannot open another connection to \(uri): \(error.message)", cause: error)
                    }
                }
            }
        } catch {
            for connection in opened { await connection.close() }
            throw error
        }
        let source = NBDBlockSource(
            uri: uri, bitmap: bitmap, connections: opened, retry: retry, stallTimeout: stallTimeout)
        do throws(CopyError) {
            let result = try await body(source)
            await source.close()
            return result
        } catch {
            await source.close()  // the connections it has now, some perhaps opened again
            throw error
        }
    }

    private static func metaContexts(bitmap: String?) -> [String] {
        [MetaContext.baseAllocation] + (bitmap.map { [MetaContext.dirtyBitmap($0)] } ?? [])
    }

    private func close() async {
        for slot in slots { await slot.current.connection.close() }
    }

    // MARK: Requests

    public func extents(in range: Range<UInt64>) async throws(CopyError) -> [SourceExtent] {
        let allocationContext = MetaContext.baseAllocation
        let dirtyContext = bitmap.map(MetaContext.dirtyBitmap)
        guard !info.metaContexts.isEmpty else {
            // No block status at all: everything must be read.
            return SourceExtent.merge(allocation: nil, dirty: nil, range: range)
        }
        // Block status asks about the negotiated meta contexts, which only the first connection has.
        let map = try await retrying(on: slots[0], "cannot read block status from \(uri)") {
            connection throws(NBDError) in try await connection.blockStatus(in: range)
        }
        return SourceExtent.merge(
            allocation: map[allocationContext], dirty: dirtyContext.flatMap { map[$0] }, range: range)
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) async throws(CopyError) {
        let index = nextConnection.add(1, ordering: .relaxed).oldValue % slots.count
        try await retrying(on: slots[index], "reading \(uri) failed") { connection throws(NBDError) in
            try await connection.read(into: buffer, at: offset)
        }
    }

    // MARK: Retries

    /// Runs `request` on the slot's connection until it succeeds, fails for good, or has been retried
    /// `retry.retries` times; reconnects the slot when its connection is gone.
    private func retrying<Value>(
        on slot: ConnectionSlot, _ failure: String,
        _ request: (NBDConnection) async throws(NBDError) -> Value
    ) async throws(CopyError) -> Value {
        var attempt = 0
        while true {
            let (connection, generation) = slot.current
            let error: NBDError
            do {
                return try await request(connection)
            } catch let caught {
                error = caught
            }
            let lost = error.code == .disconnected || !connection.isOpen
            let transient =
                lost || ([.read, .blockStatus].contains(error.code) && RetryPolicy.isTransient(errno: error.errno))
            if error.code == .stalled, let stallTimeout {
                throw CopyError(
                    .source,
                    "no reply from \(uri) for \(stallTimeout.components.seconds) s (--stall-timeout); check the NBD server and its storage",
                    cause: error)
            }
            guard transient, attempt < retry.retries, !Task.isCancelled, error.code != .cancelled else {
                let tries = attempt > 0 ? " (after \(attempt) \(attempt == 1 ? "retry" : "retries"))" : ""
                throw CopyError(.source, "\(failure): \(error.message)\(tries)", cause: error)
            }
            attempt += 1
            retryCount.add(1, ordering: .relaxed)
            do {
                try await Task.sleep(for: retry.delay(beforeRetry: attempt))
            } catch {
                throw CopyError(.interrupted, "interrupted")
            }
            if lost {
                do {
                    try await slot.reconnect(after: generation) { [self] () throws(CopyError) in
                        try await reopen(like: connection)
                    }
                } catch  where error.code == .source {
                    continue  // the server may still be starting: the next try fails fast and waits longer
                }
            }
        }
    }

    /// A new connection to the same export: it must still be the same size and, on a connection that had them,
    /// still offer the meta contexts (a vanished bitmap cannot be read again).
    private func reopen(like old: NBDConnection) async throws(CopyError) -> NBDConnection {
        let contexts = old.info.metaContexts.isEmpty ? [] : Self.metaContexts(bitmap: bitmap)
        let connection: NBDConnection
        do {
            connection = try await NBDConnection.connect(uri: uri, metaContexts: contexts, stallTimeout: stallTimeout)
        } catch {
            throw CopyError(.source, "cannot reconnect to \(uri): \(error.message)", cause: error)
        }
        if connection.info.size != info.size {
            await connection.close()
            throw CopyError(
                .unsupported,
                "\(uri) is \(connection.info.size) bytes after reconnecting, not \(info.size): the export changed; start the copy again"
            )
        }
        if let missing = contexts.first(where: { !connection.info.metaContexts.contains($0) }) {
            await connection.close()
            throw CopyError(
                .unsupported, "\(uri) no longer offers \(missing) after reconnecting; start a full copy or backup")
        }
        return connection
    }
}
