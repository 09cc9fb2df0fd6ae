/// Something told of every byte a chain reader reads from one image, as it reads it: a restore hashes the image's
/// bytes on their way through rather than reading the image a second time for its digest.
package protocol ImageReadObserver: Sendable {
    /// `bytes` were read from the image at `offset` (only bytes within the image: never the zeros past its end).
    /// Called on the reading thread, concurrently from several.
    func observe(_ bytes: UnsafeRawBufferPointer, at offset: UInt64)
}

/// An image whose reads are shown to an ``ImageReadObserver`` before the reader uses them.
final class ObservedImage: RandomAccessImage {
    private let image: any RandomAccessImage
    private let observer: any ImageReadObserver

    init(_ image: any RandomAccessImage, observer: any ImageReadObserver) {
        self.image = image
        self.observer = observer
    }

    var path: String { image.path }
    var size: UInt64 { image.size }
    var device: UInt64 { image.device }
    var inode: UInt64 { image.inode }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(QCOW2Error) {
        try image.read(into: buffer, at: offset)
        guard offset < image.size else { return }
        let within = Int(min(UInt64(buffer.count), image.size - offset))
        observer.observe(UnsafeRawBufferPointer(rebasing: buffer[..<within]), at: offset)
    }

    func nextData(from offset: UInt64) -> UInt64? { image.nextData(from: offset) }
    func nextHole(from offset: UInt64) -> UInt64 { image.nextHole(from: offset) }
    func readsOnce() { image.readsOnce() }
    func allocatedBytes() throws(QCOW2Error) -> UInt64 { try image.allocatedBytes() }
}
