/// A new object of a ``BucketStore`` written as a stream: appends placed one after another by a
/// ``BucketPlacedObjectWriter``, which sends an object of one part in a single `PutObject` and a larger one as a
/// multipart upload, each part sent once full.
final class BucketObjectWriter: ObjectWriter {
    private let placed: BucketPlacedObjectWriter
    private(set) var count: UInt64 = 0

    init(placed: BucketPlacedObjectWriter) {
        self.placed = placed
    }

    func append(_ bytes: UnsafeRawBufferPointer) throws(StoreError) {
        try placed.write(bytes, at: count)
        count += UInt64(bytes.count)
    }

    func finish() throws(StoreError) {
        try placed.finish(size: count)
    }

    func discard() {
        placed.discard()
    }
}
