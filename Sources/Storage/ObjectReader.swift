/// An object open for reading: its size when opened, and reads of any range of it. Reads carry their own offset,
/// so concurrent reads need no lock.
public protocol ObjectReader: Sendable {
    /// The object's size in bytes when it was opened.
    var size: UInt64 { get }

    /// Reads into `buffer` from `offset` once and returns how many bytes were read: 0 at the end of the object,
    /// possibly fewer than asked before it.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(StoreError) -> Int

    /// A hint that the object is read once, front to back (a digest): the folder store then reads ahead and drops
    /// what it read from the page cache when the reader ends.
    func readsOnceInOrder()
}

extension ObjectReader {
    /// Reads into `buffer` from `offset` until it is full or the object ends, however many reads that takes; returns
    /// how many bytes were read.
    public func readFully(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(StoreError) -> Int {
        var done = 0
        while done < buffer.count {
            let count = try read(
                into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]), at: offset + UInt64(done))
            if count == 0 { break }
            done += count
        }
        return done
    }
}
