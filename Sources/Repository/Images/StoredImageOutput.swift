import QCOW2
import Storage

/// A new image written into an object of a store (a bucket's multipart upload) by the qcow2 writer.
final class StoredImageOutput: ImageOutput {
    let name: String
    private let writer: any PlacedObjectWriter

    init(_ writer: any PlacedObjectWriter, name: String) {
        self.writer = writer
        self.name = name
    }

    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(QCOW2Error) {
        do throws(StoreError) { try writer.write(bytes, at: offset) } catch { throw Self.failed("write", name, error) }
    }

    func finish(size: UInt64) throws(QCOW2Error) {
        do throws(StoreError) { try writer.finish(size: size) } catch { throw Self.failed("finish", name, error) }
    }

    func discard() { writer.discard() }

    /// A store's failure as the writer's: the store's errno (a full disk) stays the cause.
    private static func failed(_ what: String, _ name: String, _ error: StoreError) -> QCOW2Error {
        QCOW2Error(.io, "cannot \(what) \(name): \(error.message)", cause: error.cause ?? error)
    }
}

extension PendingPoint {
    /// The object disk `target`'s image is written into, when the store's objects are not local files (a bucket);
    /// nil when the image is a file at ``imagePath(for:)``. `maximumSize` bounds the image file's size, from which the
    /// store sizes its parts.
    public func imageOutput(for target: String, maximumSize: UInt64) throws(RepositoryError) -> (any ImageOutput)? {
        let key = try storeStep { () throws(StoreError) in try self.key.appending(Self.imageName(for: target)) }
        guard store.localPath(of: key) == nil else { return nil }
        let writer = try storeStep { () throws(StoreError) in
            try store.createPlaced(key, expectedSize: maximumSize)
        }
        return StoredImageOutput(writer, name: store.location(of: key))
    }
}
