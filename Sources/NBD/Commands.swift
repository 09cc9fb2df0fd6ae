internal import CLibNBD
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

// MARK: - Commands in flight
// A command's Swift state travels through libnbd as `user_data`: retained when the command is started,
// recovered unretained in the callbacks, released in the `free` callback, which libnbd always calls.
// All of it runs on the handle's loop thread, so the state needs no lock. The `free` callback also
// guarantees that every command finishes exactly once, even when libnbd drops it without completing it.

/// Why a connection's thread closed it (cancelled, stalled), so that the commands it drops say so; nil while it
/// runs, or when the server went away.
final class ConnectionEnd: Sendable {
    private let reason = Mutex<NBDError?>(nil)

    func set(_ error: NBDError) { reason.withLock { if $0 == nil { $0 = error } } }
    var error: NBDError? { reason.withLock { $0 } }
}

/// Base of the per-command state: finishes the command once.
class CommandState {
    private var finished = false
    /// Set while the command is being started: libnbd calls `free` inside a failing start call, and the
    /// start call's own error, not "dropped", is what the caller must see.
    var isStarting = false
    /// Shared by the commands of one connection.
    var end: ConnectionEnd?

    final func finish(_ error: NBDError?) {
        guard !finished else { return }
        finished = true
        deliver(error)
    }

    final func released() {
        if !isStarting, !finished {
            finish(end?.error ?? NBDError(.disconnected, "the connection closed before the NBD command completed"))
        }
    }

    func deliver(_ error: NBDError?) {}
    func failure(errno: Int32) -> NBDError { .completion(.read, "NBD command failed", errno: errno) }
}

final class ReadCommand: CommandState {
    let offset: UInt64
    let count: Int
    private let completion: @Sendable (NBDError?) -> Void

    init(offset: UInt64, count: Int, completion: @escaping @Sendable (NBDError?) -> Void) {
        self.offset = offset
        self.count = count
        self.completion = completion
    }

    override func deliver(_ error: NBDError?) { completion(error) }
    override func failure(errno: Int32) -> NBDError {
        .completion(.read, "read of \(count) bytes at offset \(offset) failed", errno: errno)
    }
}

final class BlockStatusCommand: CommandState {
    let offset: UInt64
    let length: UInt64
    private(set) var reply = BlockStatusReply()
    private let completion: @Sendable (Result<BlockStatusReply, NBDError>) -> Void

    init(
        offset: UInt64, length: UInt64,
        completion: @escaping @Sendable (Result<BlockStatusReply, NBDError>) -> Void
    ) {
        self.offset = offset
        self.length = length
        reply.offset = offset
        self.completion = completion
    }

    func receive(context: String, offset: UInt64, entries: UnsafeBufferPointer<UInt32>) {
        // Entries come in (length, flags) pairs; a trailing odd word would be a server bug and is ignored.
        var pairs: [BlockStatusEntry] = []
        pairs.reserveCapacity(entries.count / 2)
        var index = 0
        while index + 1 < entries.count {
            pairs.append(BlockStatusEntry(length: entries[index], flags: entries[index + 1]))
            index += 2
        }
        reply.append(context: context, startingAt: offset, pairs)
    }

    override func deliver(_ error: NBDError?) {
        completion(error.map { .failure($0) } ?? .success(reply))
    }
    override func failure(errno: Int32) -> NBDError {
        .completion(.blockStatus, "block status of \(length) bytes at offset \(offset) failed", errno: errno)
    }
}

// MARK: - C callbacks (non-capturing, top level)

func readCompleted(_ userData: UnsafeMutableRawPointer?, _ error: UnsafeMutablePointer<Int32>?) -> Int32 {
    guard let userData else { return 1 }
    let command = Unmanaged<CommandState>.fromOpaque(userData).takeUnretainedValue()
    let errno = error?.pointee ?? 0
    command.finish(errno == 0 ? nil : command.failure(errno: errno))
    return 1  // retire the command automatically
}

func blockStatusCompleted(_ userData: UnsafeMutableRawPointer?, _ error: UnsafeMutablePointer<Int32>?) -> Int32 {
    readCompleted(userData, error)
}

func extentsReceived(
    _ userData: UnsafeMutableRawPointer?, _ metaContext: UnsafePointer<CChar>?, _ offset: UInt64,
    _ entries: UnsafeMutablePointer<UInt32>?, _ count: Int, _ error: UnsafeMutablePointer<Int32>?
) -> Int32 {
    guard let userData, let metaContext, let entries else { return 0 }
    let command = Unmanaged<BlockStatusCommand>.fromOpaque(userData).takeUnretainedValue()
    command.receive(
        context: String(cString: metaContext), offset: offset,
        entries: UnsafeBufferPointer(start: entries, count: count))
    return 0
}

func releaseCommand(_ userData: UnsafeMutableRawPointer?) {
    guard let userData else { return }
    Unmanaged<CommandState>.fromOpaque(userData).takeRetainedValue().released()
}
