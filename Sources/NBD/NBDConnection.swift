import Dispatch
import Synchronization

/// One connection to an NBD export, driven by its own thread.
///
/// Reads and block status queries are asynchronous and may be issued concurrently from many tasks; libnbd
/// pipelines them on the connection. Close the connection with ``close()``; dropping the last reference also
/// closes it, without waiting.
public final class NBDConnection: Sendable {
    /// What the server told about the export.
    public let info: ExportInfo
    private let loop: HandleLoop

    /// The most bytes one block status command asks about: the protocol's lengths are 32-bit, and this
    /// value keeps the length a multiple of 64 KiB, so it fits any minimum block size seen in practice.
    public static let maximumBlockStatusLength: UInt64 = 0xFFFF_0000

    private init(info: ExportInfo, loop: HandleLoop) {
        self.info = info
        self.loop = loop
    }

    /// Connects to an NBD URI and negotiates `metaContexts`.
    ///
    /// The URI is any that libnbd accepts: `nbd+unix:///EXPORT?socket=PATH`, `nbd://HOST:PORT/EXPORT`,
    /// `nbds://...` for TLS. Which of the requested meta contexts the server agreed to is in
    /// ``ExportInfo/metaContexts``. The corresponding C function is `nbd_connect_uri`.
    ///
    /// With a `stallTimeout`, a connection whose commands get no reply at all for that long is closed, and every
    /// command on it fails with ``NBDError/Code-swift.struct/stalled``.
    public static func connect(
        uri: String, metaContexts: [String] = [], stallTimeout: Duration? = nil
    ) async throws(NBDError) -> NBDConnection {
        let (loop, info) = try await HandleLoop.connect(
            uri: uri, metaContexts: metaContexts, stallTimeout: stallTimeout)
        return NBDConnection(info: info, loop: loop)
    }

    /// Whether commands can still be sent on this connection: false once the server dropped it, it stalled, or
    /// it was closed.
    public var isOpen: Bool { loop.isOpen }

    deinit {
        loop.requestClose()
    }

    /// Waits for commands in flight, disconnects and closes the handle.
    public func close() async {
        await loop.close()
    }

    // MARK: Reads

    /// Reads `buffer.count` bytes at `offset` into `buffer`.
    ///
    /// The buffer must stay valid until this returns, which it does only once the command has completed,
    /// failed or been dropped, never earlier. Cancelling the waiting task closes the whole connection (NBD
    /// cannot cancel a single command), so every command in flight on it fails at once with
    /// ``NBDError/Code-swift.struct/cancelled``. The corresponding C function is `nbd_aio_pread`.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) async throws(NBDError) {
        let error: NBDError? = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                loop.submit(
                    .read(buffer: .init(pointer: buffer), offset: offset) { continuation.resume(returning: $0) })
            }
        } onCancel: {
            loop.abort()
        }
        if let error { throw error }
    }

    /// Reads `count` bytes at `offset` into a new array.
    public func read(count: Int, at offset: UInt64) async throws(NBDError) -> [UInt8] {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 4096)
        defer { buffer.deallocate() }
        try await read(into: buffer, at: offset)
        return Array(buffer.bindMemory(to: UInt8.self))
    }

    /// Reads like ``read(into:at:)``, blocking the calling thread. Never call it from a Swift task.
    public func readBlocking(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(NBDError) {
        let done = DispatchSemaphore(value: 0)
        let outcome = Mutex<NBDError?>(nil)
        loop.submit(
            .read(buffer: .init(pointer: buffer), offset: offset) { error in
                outcome.withLock { $0 = error }
                done.signal()
            })
        done.wait()
        if let error = outcome.withLock({ $0 }) { throw error }
    }

    // MARK: Block status

    /// The extents of every negotiated meta context over `range`, each list covering the range exactly.
    ///
    /// Sends as many block status commands as the server needs: replies may stop short of what was asked
    /// or run past it, and each command asks about at most ``maximumBlockStatusLength`` bytes. Adjacent
    /// extents with the same flags are merged. Cancellation closes the connection, as for reads.
    /// The corresponding C function is `nbd_aio_block_status`.
    public func blockStatus(in range: Range<UInt64>) async throws(NBDError) -> [String: [BlockStatusExtent]] {
        guard range.upperBound <= info.size else {
            throw NBDError(.invalidArgument, "block status range \(range) runs past the export's end (\(info.size))")
        }
        guard !info.metaContexts.isEmpty else {
            throw NBDError(.unsupported, "the server agreed to no meta context, so it cannot report block status")
        }
        var map = BlockStatusMap(contexts: info.metaContexts, range: range)
        while !map.isComplete {
            let offset = map.covered
            let length = min(map.end - offset, Self.maximumBlockStatusLength)
            let result: Result<BlockStatusReply, NBDError> = await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    loop.submit(.blockStatus(offset: offset, length: length) { continuation.resume(returning: $0) })
                }
            } onCancel: {
                loop.abort()
            }
            try map.add(result.get())
        }
        return map.extents
    }
}
