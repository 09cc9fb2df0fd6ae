import Storage
import TestSupport

/// Feeds a ``PlacedObjectWriter`` the way the qcow2 writer does (``PlacedPieces``): pieces in a shuffled order from
/// several threads at once, some pieces never written (they must read back as zeros).
enum PlacedWrites {
    /// The object's expected bytes: `content` with the pieces in `holes` zeroed.
    static func expected(_ content: [UInt8], pieceSize: Int, holes: Set<Int>) -> [UInt8] {
        PlacedPieces.expected(content, pieceSize: pieceSize, holes: holes)
    }

    /// Writes `content` through `writer` in `pieceSize` pieces, all but those in `holes`, shuffled by `seed`, from
    /// `threads` threads; rethrows the first failure once every thread has ended.
    static func write(
        _ content: [UInt8], to writer: any PlacedObjectWriter, pieceSize: Int, threads: Int, seed: UInt64,
        holes: Set<Int> = []
    ) throws {
        try PlacedPieces.write(content, pieceSize: pieceSize, threads: threads, seed: seed, holes: holes) {
            try writer.write($0, at: $1)
        }
    }
}
