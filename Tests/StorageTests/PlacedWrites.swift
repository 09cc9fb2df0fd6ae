import Foundation
import Storage
import TestSupport

/// Feeds a ``PlacedObjectWriter`` the way the qcow2 writer does: pieces in a shuffled order from several threads at
/// once, some pieces never written (they must read back as zeros).
enum PlacedWrites {
    /// The object's expected bytes: `content` with the pieces in `holes` zeroed.
    static func expected(_ content: [UInt8], pieceSize: Int, holes: Set<Int>) -> [UInt8] {
        var bytes = content
        for piece in holes {
            let start = piece * pieceSize
            for index in start..<min(start + pieceSize, bytes.count) { bytes[index] = 0 }
        }
        return bytes
    }

    /// Writes `content` through `writer` in `pieceSize` pieces, all but those in `holes`, shuffled by `seed`, from
    /// `threads` threads; rethrows the first failure once every thread has ended.
    static func write(
        _ content: [UInt8], to writer: any PlacedObjectWriter, pieceSize: Int, threads: Int, seed: UInt64,
        holes: Set<Int> = []
    ) throws {
        var generator = SeededRandom(seed: seed)
        let pieceCount = (content.count + pieceSize - 1) / pieceSize
        let pieces = (0..<pieceCount).filter { !holes.contains($0) }.shuffled(using: &generator)
        let failure = LockedFailure()
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            for piece in stride(from: thread, to: pieces.count, by: threads).map({ pieces[$0] }) {
                let start = piece * pieceSize
                let end = min(start + pieceSize, content.count)
                do {
                    try content[start..<end].withUnsafeBytes { try writer.write($0, at: UInt64(start)) }
                } catch {
                    failure.record(error)
                    return
                }
            }
        }
        if let error = failure.first { throw error }
    }
}

/// The first error any of several threads met.
final class LockedFailure: @unchecked Sendable {  // every access holds `lock`
    private let lock = NSLock()
    private var error: (any Error)?

    func record(_ error: any Error) {
        lock.withLock { self.error = self.error ?? error }
    }

    var first: (any Error)? { lock.withLock { error } }
}
