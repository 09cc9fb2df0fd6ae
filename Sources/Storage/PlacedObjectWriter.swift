/// A new object written at byte offsets rather than appended: each byte at most once, in any order, from any
/// thread; bytes never written read as zeros up to the final size. This is how a qcow2 image goes into a store: its
/// clusters are placed out of order by several threads, its header written last. Nothing is visible under the key
/// until ``finish(size:)`` returns. If the writer is released unfinished, what it wrote is discarded.
///
/// ``finish(size:)`` and ``discard()`` come after every ``write(_:at:)`` has returned, from one thread.
public protocol PlacedObjectWriter: AnyObject, Sendable {
    /// Writes `bytes` at `offset` of the object. A byte written twice is a caller's error the store need not notice.
    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(StoreError)

    /// Makes the object, `size` bytes long, durable and visible under its key, which must still be free
    /// (``StoreError/Code/alreadyExists`` otherwise, and the object is discarded). A byte written at or past `size`
    /// is a caller's error: ``StoreError/Code/io``, and the object is discarded.
    func finish(size: UInt64) throws(StoreError)

    /// Gives the object up: nothing of it stays in the store (a bucket aborts its multipart upload).
    func discard()
}
