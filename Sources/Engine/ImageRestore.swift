import Foundation
import QCOW2

/// Writes the disk a qcow2 chain describes (any point of a backup) into a new standalone image.
public enum ImageRestore {
    /// Reads in flight at most per restored image: the chain is read on NIO's thread pool, whose threads this
    /// keeps busy without queueing more than they can take.
    public static let requestsInFlight = 16

    /// Reads the chain whose top is `image` and writes what it describes to `target`: a sparse raw file or a
    /// standalone qcow2 image (no backing file). Data is copied, zeros stay holes. Durable on return;
    /// on failure nothing is left at `target` (an existing file there is replaced only with `overwrite`). With
    /// `measureTotal`, the chain is mapped first so that `progress.bytesToCopy` is known early.
    ///
    /// The chain is opened by qemu's rules (``QCOW2ChainSource/open(path:allowDevices:)``); a repository's chain
    /// is restored with ``run(exactly:to:format:overwrite:progress:measureTotal:)``.
    public static func run(
        image: String, to target: String, format: TargetFormat, overwrite: Bool = false,
        progress: CopyProgress = CopyProgress(), measureTotal: Bool = false
    ) async throws(CopyError) -> CopySummary {
        let started = ContinuousClock.now
        let source = try await QCOW2ChainSource.open(path: image)
        return try await run(
            source, started: started, to: target, format: format, overwrite: overwrite, progress: progress,
            measureTotal: measureTotal
        ).summary
    }

    /// Reads exactly the images `layers`, top first (``QCOW2ChainSource/open(exactly:)``: nothing their headers
    /// name is opened, and each must name the expected backing file), and writes the disk they describe to
    /// `target`, as ``run(image:to:format:overwrite:progress:measureTotal:)`` does. Restores running at the same
    /// time can share `buffers`, so that their memory stays that of one.
    public static func run(
        exactly layers: [QCOW2Chain.ExpectedLayer], to target: String, format: TargetFormat, overwrite: Bool = false,
        progress: CopyProgress = CopyProgress(), measureTotal: Bool = false, buffers: BufferPool? = nil
    ) async throws(CopyError) -> CopySummary {
        let started = ContinuousClock.now
        let source = try await QCOW2ChainSource.open(exactly: layers)
        return try await run(
            source, started: started, to: target, format: format, overwrite: overwrite, progress: progress,
            measureTotal: measureTotal, buffers: buffers
        ).summary
    }

    /// Reads exactly the images `layers` as ``run(exactly:to:format:overwrite:progress:measureTotal:buffers:)`` does
    /// and writes the disk they describe to `target` as a new standalone qcow2 image, hashed as it is written
    /// (``QCOW2Writer/digest``, as a backup hashes its images): returns the summary and the digest, which is nil when
    /// the image must be read back for it.
    public static func runDigested(
        exactly layers: [QCOW2Chain.ExpectedLayer], to target: String, progress: CopyProgress = CopyProgress(),
        buffers: BufferPool? = nil
    ) async throws(CopyError) -> (summary: CopySummary, digest: SplitDigest?) {
        let started = ContinuousClock.now
        let source = try await QCOW2ChainSource.open(exactly: layers)
        return try await run(
            source, started: started, to: target, format: .qcow2, overwrite: false, progress: progress,
            measureTotal: false, buffers: buffers, digesting: true)
    }

    private static func run(
        _ source: QCOW2ChainSource, started: ContinuousClock.Instant, to target: String, format: TargetFormat,
        overwrite: Bool, progress: CopyProgress, measureTotal: Bool, buffers: BufferPool? = nil,
        digesting: Bool = false
    ) async throws(CopyError) -> (summary: CopySummary, digest: SplitDigest?) {
        // Each cluster is read once: past the page cache, whose fresh pages cost more than the read.
        source.chain.readOnce()
        let pipeline = CopyPipeline(
            requestSize: CopyRequest.defaultRequestSize, requestsInFlight: requestsInFlight,
            measureTotal: measureTotal, buffers: buffers)
        var digest: SplitDigest?
        switch format {
        case .raw:
            try await RawFileTarget.withNewFile(at: target, size: source.size, replacing: overwrite) {
                file throws(CopyError) in
                try await pipeline.run(from: source, to: file, mode: .full, progress: progress)
            }
        case .qcow2:
            digest = try await QCOW2FileTarget.write(
                at: target, size: source.size, backing: nil, replacing: overwrite, digesting: digesting
            ) { file throws(CopyError) in
                try await pipeline.run(from: source, to: file, mode: .full, progress: progress)
            }.digest
        }
        let summary = CopySummary(
            mode: .full, format: format, exportSize: source.size, bytesRead: progress.bytesRead,
            bytesWritten: progress.bytesWritten, zeroBytes: progress.zeroBytes, extents: progress.extentCount,
            seconds: (ContinuousClock.now - started).inSeconds, connections: source.connectionCount, retries: 0)
        return (summary, digest)
    }
}
