/// A new object being written: appended to in order, invisible under its key until ``finish()`` returns. If the
/// writer is released unfinished, what it wrote is discarded.
public protocol ObjectWriter: AnyObject {
    /// How many bytes were appended so far.
    var count: UInt64 { get }

    /// Appends `bytes` to the object.
    func append(_ bytes: UnsafeRawBufferPointer) throws(StoreError)

    /// Makes the object durable and visible under its key, which must still be free
    /// (``StoreError/Code/alreadyExists`` otherwise, and the object is discarded).
    func finish() throws(StoreError)

    /// Gives the object up: nothing of it stays in the store.
    func discard()
}
