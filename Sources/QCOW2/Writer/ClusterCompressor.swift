internal import CZlib
internal import CZstd
import Synchronization

/// Compresses one cluster at a time, from any number of threads at once. Each call borrows a compression context
/// from a small pool: setting one up costs more than compressing a cluster with it.
package final class ClusterCompressor: Sendable {
    /// How clusters are compressed; never ``ClusterCompression/none``.
    package let compression: ClusterCompression
    /// The most bytes a compressed cluster may take to be worth it: a sector less than the cluster.
    let largestOutput: Int
    private let contexts = Mutex<[CompressionContext]>([])

    /// A compressor of clusters of `clusterSize` bytes; nil for ``ClusterCompression/none``.
    package init?(_ compression: ClusterCompression, clusterSize: Int) {
        guard compression != .none else { return nil }
        self.compression = compression
        self.largestOutput = clusterSize - 512
    }

    /// `cluster` compressed; empty when it is all zeros (nothing to store: ``QCOW2Writer/writeCompressed(_:from:at:)``
    /// leaves it unallocated, or a zero cluster over a backing file, as `qemu-img convert` does); nil when compressing
    /// would not save a sector (it is then stored as it is).
    package func compress(_ cluster: UnsafeRawBufferPointer) -> [UInt8]? {
        if Self.isZero(cluster) { return [] }
        guard
            let context = contexts.withLock({ $0.popLast() })
                ?? CompressionContext(compression, scratchSize: largestOutput)
        else { return nil }
        defer { contexts.withLock { $0.append(context) } }
        return context.compress(cluster)
    }
}

extension ClusterCompressor {
    /// Whether every byte of `bytes` is zero, eight at a time.
    static func isZero(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let words = bytes.count / 8
        for index in 0..<words where bytes.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self) != 0 {
            return false
        }
        return bytes[(words * 8)...].allSatisfy { $0 == 0 }
    }
}

/// One zstd or deflate compression context, used by one thread at a time.
private final class CompressionContext: @unchecked Sendable {  // borrowed from its pool under the pool's lock
    private let zstd: OpaquePointer?
    private let deflate: UnsafeMutablePointer<z_stream>?
    private let level: Int32
    /// Where a cluster is compressed, copied out at its length: the result holds no more memory than it needs.
    private let scratch: UnsafeMutableRawBufferPointer

    init?(_ compression: ClusterCompression, scratchSize: Int) {
        scratch = .allocate(byteCount: scratchSize, alignment: 16)
        switch compression {
        case .none:
            scratch.deallocate()
            return nil
        case .zstd(let level):
            guard let context = ZSTD_createCCtx() else {
                scratch.deallocate()
                return nil
            }
            zstd = context
            deflate = nil
            self.level = Int32(level)
        case .deflate(let level):
            let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
            stream.initialize(to: z_stream())
            // Raw deflate with a 4 KiB window (windowBits -12): what qemu writes and reads.
            let status = deflateInit2_(
                stream, Int32(level), Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY, zlibVersion(),
                Int32(MemoryLayout<z_stream>.size))
            guard status == Z_OK else {
                stream.deallocate()
                scratch.deallocate()
                return nil
            }
            zstd = nil
            deflate = stream
            self.level = Int32(level)
        }
    }

    deinit {
        scratch.deallocate()
        if let zstd { ZSTD_freeCCtx(zstd) }
        if let deflate {
            deflateEnd(deflate)
            deflate.deallocate()
        }
    }

    /// `input` compressed, or nil when it does not fit the scratch buffer.
    func compress(_ input: UnsafeRawBufferPointer) -> [UInt8]? {
        guard let count = compress(input, into: scratch) else { return nil }
        return Array(UnsafeRawBufferPointer(rebasing: scratch[..<count]))
    }

    /// Compresses `input` into `output`; the compressed length, or nil when it does not fit.
    private func compress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Int? {
        guard let source = input.baseAddress, let target = output.baseAddress else { return nil }
        if let zstd {
            let written = ZSTD_compressCCtx(zstd, target, output.count, source, input.count, level)
            return ZSTD_isError(written) == 0 ? written : nil
        }
        guard let deflate else { return nil }
        deflateReset(deflate)
        // zlib's next_in is not const in its declaration, but deflate never writes through it.
        deflate.pointee.next_in = UnsafeMutablePointer(mutating: source.assumingMemoryBound(to: Bytef.self))
        deflate.pointee.avail_in = uInt(input.count)
        deflate.pointee.next_out = target.assumingMemoryBound(to: Bytef.self)
        deflate.pointee.avail_out = uInt(output.count)
        guard CZlib.deflate(deflate, Z_FINISH) == Z_STREAM_END else { return nil }
        return output.count - Int(deflate.pointee.avail_out)
    }
}
