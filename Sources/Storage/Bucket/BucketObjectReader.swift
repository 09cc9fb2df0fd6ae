import NIOCore
import S3

/// An object of a ``BucketStore`` open for reading: its size from the `HEAD` at open, and each read one ranged `GET`
/// copied into the caller's buffer. An object that answers with fewer bytes than its size promised (it was replaced
/// meanwhile, or the store misbehaves) is an error, never a short read that looks like its end.
struct BucketObjectReader: ObjectReader {
    let object: BucketObject
    let size: UInt64

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(StoreError) -> Int {
        guard offset < size, !buffer.isEmpty else { return 0 }
        let length = min(UInt64(buffer.count), size - offset)
        let body = try bucketStep { () throws(S3Error) in
            try object.client.getObject(bucket: object.bucket, key: object.name, range: offset..<offset + length)
        }
        guard body.readableBytes == length else {
            throw StoreError(
                .io,
                "\(object.location) answered \(body.readableBytes) bytes at offset \(offset) where \(length) were asked; it changed while it was read or the store is damaged"
            )
        }
        body.withUnsafeReadableBytes { bytes in buffer.copyMemory(from: bytes) }
        return Int(length)
    }

    /// Nothing to do: each read is a request of its own.
    func readsOnceInOrder() {}
}
