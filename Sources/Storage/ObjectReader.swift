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
