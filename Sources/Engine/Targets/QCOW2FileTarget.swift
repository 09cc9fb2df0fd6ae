import FileIO
import Foundation
import QCOW2
import SystemPackage

/// A new qcow2 image as a copy target: standalone for a full copy, or an overlay over a backing image for
/// an incremental one, written by ``QCOW2Writer`` in one pass.
///
/// ``Copy/run(_:progress:)`` uses it through ``write(at:size:backing:replacing:digesting:_:)``: the image is written under a temporary
/// name and renamed to its path only once finalized and flushed, so a failure leaves nothing behind and an
/// existing file at the path untouched.
public final class QCOW2FileTarget: BlockTarget {
    /// The file the image becomes once committed.
    public let path: String
    private let writer: QCOW2Writer
    /// Makes every call on the image file, one at a time (see ``WriterThread``).
    private let thread: WriterThread
    /// Hashes data clusters in file order while `thread` writes the ones before, when the image is digested.
    private let hashing: WriterThread?
    /// The end of a backing image shorter than this one; see ``BlockTarget/previousEnd``.
    public let previousEnd: UInt64?
    /// Compresses clusters before they are written, on the I/O pool's threads, when the image is compressed.
    private let compressor: ClusterCompressor?

    private init(
        path: String, writer: QCOW2Writer, thread: WriterThread, hashing: WriterThread?, previousEnd: UInt64?
    ) {
        self.path = path
        self.writer = writer
        self.thread = thread
        self.hashing = hashing
        self.previousEnd = previousEnd
        self.compressor = ClusterCompressor(writer.compression, clusterSize: writer.clusterSize)
    }

    /// A backing image for an overlay: where it is, and the name to store in the overlay's header.
    public struct Backing: Sendable {
        /// The backing image's path, as the caller gave it.
        public var path: String
        /// The name stored in the overlay: relative to the overlay's directory, so both can move together.
        public var storedName: String
        /// The backing image's virtual size. An overlay may be larger (a disk grown since): past this it reads
        /// as zeros, as qemu reads a backing file shorter than its overlay.
        public var virtualSize: UInt64

        /// A backing image the caller opened itself (a repository's chain read through its store): its name for
        /// messages, the name the overlay stores, and its virtual size.
        public init(path: String, storedName: String, virtualSize: UInt64) {
            self.path = path
            self.storedName = storedName
            self.virtualSize = virtualSize
        }

        /// Checks that `path` is a qcow2 image whose whole backing chain opens and whose virtual size fits
        /// a source of `size` bytes (no larger: a disk may have grown since, not shrunk), and computes its name
        /// relative to `overlay`. The chain is opened by qemu's rules; a FIFO or socket in it is refused, and a
        /// device unless `allowDevices`.
        public static func inspect(
            _ path: String, size: UInt64, for overlay: String, allowDevices: Bool = false
        ) async throws(CopyError) -> Backing {
            let backing = try await open(path, for: overlay, allowDevices: allowDevices)
            guard !backing.isLarger(than: size) else {
                throw CopyError(
                    .targetMismatch,
                    "the backing image \(path) is \(backing.virtualSize) bytes, more than the source's \(size) bytes; give the previous point of this disk, or make a full copy of a disk that shrank"
                )
            }
            return backing
        }

        /// Checks that `path` is a qcow2 image whose whole backing chain opens, whatever its size, and computes its
        /// name relative to `overlay`, as ``inspect(_:size:for:allowDevices:)`` does.
        public static func open(
            _ path: String, for overlay: String, allowDevices: Bool = false
        ) async throws(CopyError) -> Backing {
            let virtualSize = try await BlockingWork.run { () throws(CopyError) -> UInt64 in
                do throws(QCOW2Error) {
                    return try QCOW2Chain.open(path: path, allowDevices: allowDevices).size
                } catch {
                    throw CopyError(
                        .targetMismatch, "the backing image \(path) is not usable: \(error.message)", cause: error)
                }
            }
            return Backing(
                path: path, storedName: RelativePath.from(directoryOf: overlay, to: path), virtualSize: virtualSize)
        }

        /// Whether the backing image holds more than an image of a source of `size` bytes: the disk shrank, and an
        /// overlay cannot cut its backing short.
        public func isLarger(than size: UInt64) -> Bool {
            virtualSize > QCOW2FileTarget.imageSize(for: size)
        }
    }

    // MARK: Scope

    /// The virtual size of an image holding `size` bytes: qemu reads qcow2 sizes in whole 512-byte sectors
    /// and would cut a partial last sector off, so the size is rounded up, as `qemu-img create` does. The
    /// bytes past the source's end read as zeros.
    public static func imageSize(for size: UInt64) -> UInt64 {
        // Saturates rather than overflows; no qcow2 image is that large (see ``QCOW2Writer/maximumSize(clusterBits:)``).
        size > UInt64.max - 511 ? UInt64.max & ~511 : (size + 511) / 512 * 512
    }

    /// Writes a new qcow2 image of `size` bytes at `path` through `body`, with `backing` for an overlay.
    ///
    /// The image is 0600 whatever the umask, or when it replaces a regular file, has that file's mode. A
    /// `size` above ``QCOW2Writer/maximumSize(clusterBits:)`` is refused before anything is created.
    static func withNewImage<Result: Sendable>(
        at path: String, size: UInt64, backing: Backing?, replacing: Bool,
        _ body: (QCOW2FileTarget) async throws(CopyError) -> Result
    ) async throws(CopyError) -> Result {
        try await write(at: path, size: size, backing: backing, replacing: replacing, digesting: false, body).result
    }

    /// Writes a new qcow2 image as ``withNewImage(at:size:backing:replacing:_:)`` does, and hashes it as it is
    /// written when `digesting` (``QCOW2Writer/digest``): returns `body`'s result and the committed image's digest,
    /// which is nil when the image must be read back for it. With `output`, the image goes into the object it makes
    /// (`path` only names it): finished when complete, discarded on failure.
    static func write<Result: Sendable>(
        at path: String, size: UInt64, backing: Backing?, replacing: Bool, digesting: Bool,
        compression: ClusterCompression = .none, output: CopyTarget.ImageOutputMaker? = nil,
        _ body: (QCOW2FileTarget) async throws(CopyError) -> Result
    ) async throws(CopyError) -> (result: Result, digest: SplitDigest?) {
        if output == nil { try NewFile.checkReplaceable(path, replacing: replacing) }
        if let backing, backing.isLarger(than: size) {
            throw CopyError(
                .targetMismatch,
                "the backing image \(backing.path) is \(backing.virtualSize) bytes, more than the \(size) bytes of \(path)"
            )
        }
        let maximum = QCOW2Writer.maximumSize()
        guard size <= maximum else {
            throw CopyError(
                .targetMismatch,
                "the source is \(size) bytes, more than the \(maximum) bytes (\(maximum >> 50) PiB) a qcow2 image with 64 KiB clusters can hold; copy it to a raw image (--format raw) instead"
            )
        }
        let destination = Destination(path: path, replacing: replacing, output: output, compression: compression)
        return try await WriterThread.with { thread async throws(CopyError) -> (Result, SplitDigest?) in
            try await WriterThread.with(if: digesting) { hashing async throws(CopyError) -> (Result, SplitDigest?) in
                let imageSize = imageSize(for: size)
                let writer = try await thread.run { () throws(CopyError) -> QCOW2Writer in
                    try destination.makeWriter(size: imageSize, backing: backing, digesting: digesting)
                }
                // A backing shorter than the image (a disk grown since) reads as zeros past its end.
                let previousEnd = backing.flatMap { $0.virtualSize < imageSize ? $0.virtualSize : nil }
                let target = QCOW2FileTarget(
                    path: path, writer: writer, thread: thread, hashing: hashing, previousEnd: previousEnd)
                let result: Result
                do throws(CopyError) {
                    result = try await body(target)
                    try await thread.run { () throws(CopyError) in
                        defer { writer.close() }
                        do throws(QCOW2Error) { try writer.finalize() } catch { throw CopyError(error, target: path) }
                    }
                } catch {
                    writer.close()
                    destination.removeTemporary()
                    throw error
                }
                try await destination.commit()
                return (result, writer.digest)
            }
        }
    }

    /// Where a new image is written: a temporary file renamed to its path once complete, or an output object that
    /// the writer finishes itself.
    private struct Destination: Sendable {
        var path: String
        var replacing: Bool
        var output: CopyTarget.ImageOutputMaker?
        var compression: ClusterCompression

        var temporary: String { NewFile.temporaryPath(for: path) }

        func makeWriter(size: UInt64, backing: Backing?, digesting: Bool) throws(CopyError) -> QCOW2Writer {
            if let output {
                var estimate = StandaloneImageSize(size: size)
                estimate.addData(0..<size)
                let object = try output(estimate.fileBytes)
                do throws(QCOW2Error) {
                    return try QCOW2Writer(
                        into: object, size: size, backingFile: backing?.storedName, digesting: digesting,
                        compression: compression)
                } catch {
                    object.discard()
                    throw CopyError(error, target: path)
                }
            }
            do throws(QCOW2Error) {
                TargetPaths.remove(temporary)  // a leftover of a run that was killed
                return try QCOW2Writer(
                    creating: temporary, size: size, backingFile: backing?.storedName,
                    permissions: NewFile.permissions(for: path, replacing: replacing), digesting: digesting,
                    compression: compression)
            } catch {
                throw CopyError(error, target: path)
            }
        }

        func removeTemporary() {
            if output == nil { TargetPaths.remove(temporary) }
        }

        func commit() async throws(CopyError) {
            if output == nil { try await NewFile.commit(temporary, as: path) }
        }
    }

    // MARK: BlockTarget

    public var granularity: Int { writer.clusterSize }

    public func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) async throws(CopyError) {
        try await write(bytes, at: offset, known: nil)
    }

    public func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64, pieceHashes: UnsafeRawBufferPointer)
        async throws(CopyError)
    {
        try await write(bytes, at: offset, known: Borrowed(pointer: pieceHashes))
    }

    /// Writes `bytes` at `offset`, hashed on the hashing thread (but for the pieces whose hashes are `known`) while the
    /// writing thread writes the buffer before.
    private func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64, known: Borrowed<UnsafeRawBufferPointer>?)
        async throws(CopyError)
    {
        let borrowed = Borrowed(pointer: bytes)
        if let compressor { return try await writeCompressed(borrowed, at: offset, compressor) }
        guard let hashing else {
            try await thread.run { [writer, path] () throws(CopyError) in
                do throws(QCOW2Error) { try writer.writeClusters(borrowed.pointer, at: offset) } catch {
                    throw CopyError(error, target: path)
                }
            }
            return
        }
        // Placed and hashed on one thread, written on the other: SHA-256 of one buffer overlaps the write of the last.
        let host = try await hashing.run { [writer, path] () throws(CopyError) -> UInt64 in
            do throws(QCOW2Error) {
                return try writer.placeClusters(borrowed.pointer, at: offset, pieceHashes: known?.pointer)
            } catch {
                throw CopyError(error, target: path)
            }
        }
        try await thread.run { [writer, path] () throws(CopyError) in
            do throws(QCOW2Error) { try writer.writePlaced(borrowed.pointer, at: host) } catch {
                throw CopyError(error, target: path)
            }
        }
    }

    /// Compresses each whole cluster of `bytes` on the I/O pool (copies write several buffers at once, so the pool's
    /// threads all compress), then packs them into the image on the writing thread.
    private func writeCompressed(
        _ bytes: Borrowed<UnsafeRawBufferPointer>, at offset: UInt64, _ compressor: ClusterCompressor
    ) async throws(CopyError) {
        let clusterSize = writer.clusterSize
        let compressed = try await BlockingWork.run { () throws(CopyError) -> [[UInt8]?] in
            stride(from: 0, to: bytes.pointer.count, by: clusterSize).map { start in
                guard start + clusterSize <= bytes.pointer.count else { return nil }
                return compressor.compress(UnsafeRawBufferPointer(rebasing: bytes.pointer[start..<start + clusterSize]))
            }
        }
        try await thread.run { [writer, path] () throws(CopyError) in
            do throws(QCOW2Error) { try writer.writeCompressed(compressed, from: bytes.pointer, at: offset) } catch {
                throw CopyError(error, target: path)
            }
        }
    }

    public func writeZeros(at offset: UInt64, length: UInt64) async throws(CopyError) {
        do throws(QCOW2Error) { try writer.zeroClusters(at: offset, length: length) } catch {
            throw CopyError(error, target: path)
        }
    }

    public func settled(below offset: UInt64) async throws(CopyError) {
        try await thread.run { [writer, path] () throws(CopyError) in
            do throws(QCOW2Error) { try writer.settle(below: offset) } catch { throw CopyError(error, target: path) }
        }
    }
}

extension CopyError {
    /// A qcow2 writer's error as a copy error: a full disk is called so.
    init(_ error: QCOW2Error, target: String) {
        if let errno = error.cause as? Errno, errno == .noSpace || errno == .diskQuotaExceeded {
            self.init(.noSpace, "no space left for \(target); free space or choose another target", cause: error)
        } else {
            self.init(.target, "writing \(target) failed: \(error.message)", cause: error)
        }
    }
}
