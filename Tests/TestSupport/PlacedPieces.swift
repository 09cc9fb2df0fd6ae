import Foundation

/// Feeds bytes to a writer at offsets the way the qcow2 writer does: pieces in a shuffled order from several threads
/// at once, some pieces never written (they must read back as zeros). Shared by the tests of the stores' placed
/// writers and of the sealed one.
package enum PlacedPieces {
    /// The object's expected bytes: `content` with the pieces in `holes` zeroed.
    package static func expected(_ content: [UInt8], pieceSize: Int, holes: Set<Int>) -> [UInt8] {
        var bytes = content
        for piece in holes {
            let start = piece * pieceSize
            for index in start..<min(start + pieceSize, bytes.count) { bytes[index] = 0 }
        }
        return bytes
    }

    /// Hands `content` to `place` in `pieceSize` pieces with their offsets, all but those in `holes`, shuffled by
    /// `seed`, from `threads` threads; rethrows the first failure once every thread has ended.
    package static func write(
        _ content: [UInt8], pieceSize: Int, threads: Int, seed: UInt64, holes: Set<Int> = [],
        place: @Sendable (UnsafeRawBufferPointer, UInt64) throws -> Void
    ) throws {
        var generator = SeededRandom(seed: seed)
        let pieceCount = (content.count + pieceSize - 1) / pieceSize
        let pieces = (0..<pieceCount).filter { !holes.contains($0) }.shuffled(using: &generator)
        let failure = FirstFailure()
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            for piece in stride(from: thread, to: pieces.count, by: threads).map({ pieces[$0] }) {
                let start = piece * pieceSize
                let end = min(start + pieceSize, content.count)
                do {
                    try content[start..<end].withUnsafeBytes { try place($0, UInt64(start)) }
                } catch {
                    failure.record(error)
                    return
                }
            }
        }
        if let error = failure.error { throw error }
    }
}

/// The first error any of several threads met.
package final class FirstFailure: @unchecked Sendable {  // every access holds `lock`
    private let lock = NSLock()
    private var recorded: (any Error)?

    package init() {}

    /// Keeps `error` unless one was recorded before.
    package func record(_ error: any Error) {
        lock.withLock { recorded = recorded ?? error }
    }

    /// The first error recorded.
    package var error: (any Error)? { lock.withLock { recorded } }
}
