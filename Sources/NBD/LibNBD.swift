internal import CLibNBD

#if canImport(Glibc)
    import Glibc
#endif

// MARK: - Raw calls
// Every libnbd call of the module goes through this file, so that C types stay here and every failure is
// turned into an NBDError on the thread that made the call, before anything else can overwrite libnbd's
// per-thread error.

/// A libnbd handle pointer. It is created by one thread and then used only by the thread of its
/// `HandleLoop`, which is why it may cross threads once.
struct HandlePointer: @unchecked Sendable {  // handed to the loop thread once, then used there only
    let raw: OpaquePointer
}

enum LibNBD {
    /// libnbd's last error on this thread, as an NBDError.
    static func lastError(_ code: NBDError.Code, _ context: String) -> NBDError {
        let errno = nbd_get_errno()
        let message = nbd_get_error().map { String(cString: $0) } ?? "unknown libnbd error"
        return NBDError(code, "\(context): \(message)", errno: errno)
    }

    static func create() throws(NBDError) -> HandlePointer {
        guard let handle = nbd_create() else { throw lastError(.connect, "cannot create an NBD handle") }
        return HandlePointer(raw: handle)
    }

    static func close(_ handle: HandlePointer) {
        nbd_close(handle.raw)
    }

    /// Settings made before connecting: the meta contexts to negotiate, no zeroing of read buffers (every
    /// buffer is fully overwritten by a successful read, and discarded after a failed one), what a URI may
    /// ask for: the TCP and unix transports only (no vsock), and reading the local files it names for TLS
    /// (`tls-certificates=DIR`, `tls-psk-file=FILE`), which libnbd refuses unless allowed; and a TLS server's
    /// certificate verified, said outright rather than left to a default. libnbd acts on it over TCP only, where it
    /// has a host name; over a unix socket ``UnixSocketPeerCheck`` verifies the server.
    ///
    /// The corresponding C functions are `nbd_add_meta_context`, `nbd_set_pread_initialize`,
    /// `nbd_set_uri_allow_transports`, `nbd_set_uri_allow_local_file` and `nbd_set_tls_verify_peer`.
    static func configure(_ handle: HandlePointer, metaContexts: [String]) throws(NBDError) {
        for name in metaContexts where nbd_add_meta_context(handle.raw, name) == -1 {
            throw lastError(.invalidArgument, "cannot request meta context \(name)")
        }
        if nbd_set_pread_initialize(handle.raw, false) == -1
            || nbd_set_uri_allow_transports(handle.raw, LIBNBD_ALLOW_TRANSPORT_TCP | LIBNBD_ALLOW_TRANSPORT_UNIX) == -1
            || nbd_set_uri_allow_local_file(handle.raw, true) == -1
            || nbd_set_tls_verify_peer(handle.raw, true) == -1
        {
            throw lastError(.invalidArgument, "cannot configure the NBD handle")
        }
    }

    /// Starts connecting and negotiating without blocking; the handle's thread drives the rest with
    /// ``notifyRead(_:failing:)`` and ``notifyWrite(_:failing:)`` until ``isReady(_:)``.
    ///
    /// The corresponding C function is `nbd_aio_connect_uri`.
    static func startConnect(_ handle: HandlePointer, uri: String) throws(NBDError) {
        if nbd_aio_connect_uri(handle.raw, uri) == -1 {
            throw lastError(.connect, "cannot connect to \(uri)")
        }
    }

    /// Whether the handshake is done and commands can be issued (`nbd_aio_is_ready`).
    static func isReady(_ handle: HandlePointer) -> Bool { nbd_aio_is_ready(handle.raw) == 1 }

    static func exportInfo(_ handle: HandlePointer, metaContexts: [String]) throws(NBDError) -> ExportInfo {
        let h = handle.raw
        let size = nbd_get_size(h)
        guard size >= 0 else { throw lastError(.connect, "cannot read the export size") }
        func blockSize(_ kind: Int32) -> UInt32 {
            let value = nbd_get_block_size(h, kind)
            return value > 0 ? UInt32(clamping: value) : 0
        }
        var offered: Set<String> = []
        for name in metaContexts where nbd_can_meta_context(h, name) == 1 {
            offered.insert(name)
        }
        return ExportInfo(
            size: UInt64(size),
            blockSizes: ExportInfo.BlockSizes(
                minimum: blockSize(LIBNBD_SIZE_MINIMUM),
                preferred: blockSize(LIBNBD_SIZE_PREFERRED),
                maximum: blockSize(LIBNBD_SIZE_MAXIMUM)
            ),
            canMultiConn: nbd_can_multi_conn(h) == 1,
            isReadOnly: nbd_is_read_only(h) == 1,
            metaContexts: offered
        )
    }

    static func shutdown(_ handle: HandlePointer) {
        _ = nbd_shutdown(handle.raw, 0)
    }

    // MARK: Event loop

    struct Direction: OptionSet {
        let rawValue: UInt32
        static let read = Direction(rawValue: UInt32(LIBNBD_AIO_DIRECTION_READ))
        static let write = Direction(rawValue: UInt32(LIBNBD_AIO_DIRECTION_WRITE))
    }

    static func socket(_ handle: HandlePointer) -> Int32 { nbd_aio_get_fd(handle.raw) }
    static func direction(_ handle: HandlePointer) -> Direction {
        Direction(rawValue: nbd_aio_get_direction(handle.raw))
    }
    static func isDead(_ handle: HandlePointer) -> Bool {
        nbd_aio_is_dead(handle.raw) == 1 || nbd_aio_is_closed(handle.raw) == 1
    }
    static func inFlight(_ handle: HandlePointer) -> Int32 { nbd_aio_in_flight(handle.raw) }

    static func notifyRead(
        _ handle: HandlePointer, failing: (NBDError.Code, String) = (.disconnected, "NBD connection failed")
    ) throws(NBDError) {
        if nbd_aio_notify_read(handle.raw) == -1 { throw lastError(failing.0, failing.1) }
    }

    static func notifyWrite(
        _ handle: HandlePointer, failing: (NBDError.Code, String) = (.disconnected, "NBD connection failed")
    ) throws(NBDError) {
        if nbd_aio_notify_write(handle.raw) == -1 { throw lastError(failing.0, failing.1) }
    }

    // MARK: Commands

    /// Starts a read. On success libnbd calls `readCompleted` and then `releaseCommand` with `context`;
    /// on failure only `releaseCommand`.
    static func startRead(
        _ handle: HandlePointer, into buffer: UnsafeMutableRawBufferPointer, offset: UInt64,
        context: UnsafeMutableRawPointer
    ) throws(NBDError) {
        let completion = nbd_completion_callback(
            callback: readCompleted, user_data: context, free: releaseCommand)
        if nbd_aio_pread(handle.raw, buffer.baseAddress, buffer.count, offset, completion, 0) == -1 {
            throw lastError(.read, "cannot read \(buffer.count) bytes at offset \(offset)")
        }
    }

    /// Starts a block status command over `length` bytes at `offset` for every negotiated meta context.
    /// The same retained context serves both callbacks; libnbd releases each callback's reference.
    static func startBlockStatus(
        _ handle: HandlePointer, offset: UInt64, length: UInt64, context: UnsafeMutableRawPointer
    ) throws(NBDError) {
        let extents = nbd_extent_callback(callback: extentsReceived, user_data: context, free: releaseCommand)
        let completion = nbd_completion_callback(
            callback: blockStatusCompleted, user_data: context, free: releaseCommand)
        if nbd_aio_block_status(handle.raw, length, offset, extents, completion, 0) == -1 {
            throw lastError(.blockStatus, "cannot get block status of \(length) bytes at offset \(offset)")
        }
    }
}
