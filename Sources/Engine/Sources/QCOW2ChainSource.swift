import FileIO
import QCOW2

/// A qcow2 backing chain as a block source, for restores: every layer's data is read through the chain,
/// and what no layer holds (or a layer marks as zero) is reported as zeros, never read.
public final class QCOW2ChainSource: BlockSource {
    /// The chain being read.
    public let chain: QCOW2Chain
    /// Whether the chain's images are objects of a store across the network (a bucket), whose reads wait on answers
    /// and run on a pool sized for that, with many in flight.
    let readsObjects: Bool

    public init(chain: QCOW2Chain) {
        self.chain = chain
        self.readsObjects = false
    }

    init(chain: QCOW2Chain, readsObjects: Bool) {
        self.chain = chain
        self.readsObjects = readsObjects
    }

    /// Opens the chain whose top is `path` by qemu's rules (``QCOW2Chain/init(path:format:allowDevices:)``), off
    /// the cooperative threads: for an image the caller chose, whatever it names.
    public static func open(path: String, allowDevices: Bool = false) async throws(CopyError) -> QCOW2ChainSource {
        let chain = try await BlockingWork.run { () throws(CopyError) -> QCOW2Chain in
            do throws(QCOW2Error) { return try QCOW2Chain.open(path: path, allowDevices: allowDevices) } catch {
                throw CopyError(.source, "cannot open \(path): \(error.message)", cause: error)
            }
        }
        return QCOW2ChainSource(chain: chain)
    }

    /// Opens the image at `path` whichever its format (``QCOW2Chain/openProbing(path:allowDevices:)``), off the
    /// cooperative threads: for a file the user names, qcow2 with its chain or raw.
    public static func openProbing(path: String) async throws(CopyError) -> QCOW2ChainSource {
        let chain = try await BlockingWork.run { () throws(CopyError) -> QCOW2Chain in
            do throws(QCOW2Error) { return try QCOW2Chain.openProbing(path: path) } catch {
                // The reader's own message names the file when it could not open it at all.
                let message = error.message.contains(path) ? error.message : "cannot open \(path): \(error.message)"
                throw CopyError(.source, message, cause: error)
            }
        }
        return QCOW2ChainSource(chain: chain)
    }

    /// Opens exactly the images `layers`, top first (``QCOW2Chain/init(exactly:)``), off the cooperative threads:
    /// for a repository's images, where nothing an image's header names is opened, and every header must name
    /// the expected backing file.
    public static func open(exactly layers: [QCOW2Chain.ExpectedLayer]) async throws(CopyError) -> QCOW2ChainSource {
        let chain = try await BlockingWork.run { () throws(CopyError) -> QCOW2Chain in
            do throws(QCOW2Error) { return try QCOW2Chain(exactly: layers) } catch {
                throw CopyError(.source, error.message, cause: error)
            }
        }
        return QCOW2ChainSource(chain: chain, readsObjects: layers.contains { $0.opener != nil })
    }

    public var size: UInt64 { chain.size }
    /// Reads are served by the chain in one piece, whatever their size; this bounds a request's buffer.
    public var maximumReadSize: Int { 32 << 20 }
    /// The chain reader is safe for concurrent reads; two I/O threads keep the disk busy. (Objects of a store are
    /// read on a pool of more threads, so that the requests in flight over these two are all waiting at once.)
    public var connectionCount: Int { 2 }

    public func extents(in range: Range<UInt64>) async throws(CopyError) -> [SourceExtent] {
        try await BlockingWork.run { [chain] () throws(CopyError) -> [SourceExtent] in
            let mapped: [ChainExtent]
            do throws(QCOW2Error) { mapped = try chain.map(range) } catch {
                throw CopyError(.source, "cannot map \(chain.layers[0].path): \(error.message)", cause: error)
            }
            return mapped.map { extent in
                SourceExtent(
                    offset: extent.offset, length: extent.length, content: extent.kind == .data ? .data : .zero,
                    isDirty: true)
            }
        }
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) async throws(CopyError) {
        let borrowed = Borrowed(pointer: buffer)
        let read = { @Sendable [chain] () throws(CopyError) in
            do throws(QCOW2Error) { try chain.read(into: borrowed.pointer, at: offset) } catch {
                throw CopyError(.source, "reading \(chain.layers[0].path) failed: \(error.message)", cause: error)
            }
        }
        if readsObjects {
            try await BlockingWork.runWaitingOnNetwork(read)
        } else {
            try await BlockingWork.run(read)
        }
    }
}
