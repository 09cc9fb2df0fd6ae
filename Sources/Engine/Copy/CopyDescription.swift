import Foundation
import QCOW2

/// One copy, whole: what is read, what is written, and how the data moves. ``Copy/run(_:progress:)`` runs it.
public struct CopyDescription: Sendable {
    /// What the copy reads.
    public var source: CopySource
    /// What it writes.
    public var target: CopyTarget
    /// How the data moves.
    public var transfer: TransferOptions

    /// A copy of `source` into `target`, moved as `transfer` says.
    public init(from source: CopySource, to target: CopyTarget, transfer: TransferOptions = TransferOptions()) {
        self.source = source
        self.target = target
        self.transfer = transfer
    }
}

/// Runs a ``CopyDescription``: opens its source, makes its target, moves the data and commits the target.
///
/// Like nbdcopy, the copier only plans and moves buffers (``CopyPipeline``): a ``BlockSource`` and a ``BlockTarget``,
/// whatever backs them.
public enum Copy {
    /// Runs `description`, counting into `progress`. The target is durable when this returns; on failure it is left as
    /// ``CopyTarget`` says. A source the description names is opened and closed here; one the caller opened is not
    /// closed.
    public static func run(
        _ description: CopyDescription, progress: CopyProgress = CopyProgress()
    ) async throws(CopyError) -> CopySummary {
        let started = ContinuousClock.now
        let copy = Run(description: description, progress: progress, started: started)
        switch description.source {
        case .export(let uri, let bitmap):
            return try await NBDBlockSource.withSource(uri: uri, bitmap: bitmap, transfer: description.transfer) {
                source throws(CopyError) in
                try await copy.summary(of: copy.write(from: source), from: source, retries: source.retries)
            }
        case .image(let path, let allowDevices):
            return try await copy.chain(QCOW2ChainSource.open(path: path, allowDevices: allowDevices))
        case .chain(let layers):
            return try await copy.chain(QCOW2ChainSource.open(exactly: layers))
        case .openExport(let source):
            return try await copy.summary(of: copy.write(from: source), from: source, retries: source.retries)
        case .checkedExport(let source):
            return try await copy.summary(of: copy.write(from: source), from: source, retries: source.inner.retries)
        case .layeredExport(let source):
            let written = try await copy.write(from: source)
            var summary = copy.summary(of: written, from: source, retries: source.export.inner.retries)
            summary.bytesReadFromExport = source.bytesReadFromExport
            return summary
        }
    }

    /// One run of a description.
    private struct Run: Sendable {
        var description: CopyDescription
        var progress: CopyProgress
        var started: ContinuousClock.Instant

        /// Copies a chain opened for this copy, each cluster read once: past the page cache, whose fresh pages cost
        /// more than the read.
        func chain(_ source: QCOW2ChainSource) async throws(CopyError) -> CopySummary {
            source.chain.readOnce()
            return summary(of: try await write(from: source), from: source, retries: 0)
        }

        /// Makes the target, copies `source` into it and commits it.
        func write(from source: some BlockSource) async throws(CopyError) -> Written {
            let target = description.target
            let existed = target.explainsFailure && FileManager.default.fileExists(atPath: target.path)
            let pipeline = description.transfer.pipeline(connectionCount: source.connectionCount)
            let size = source.size
            func fill(_ file: some BlockTarget) async throws(CopyError) -> BlockHashTable? {
                do throws(CopyError) {
                    return try await copy(from: source, into: file, pipeline: pipeline)
                } catch {
                    guard target.explainsFailure else { throw error }
                    if case .rawUpdate = target.layout { throw error.explainedForUpdate(of: target.path) }
                    throw error.explained(existingTarget: existed ? target.path : nil)
                }
            }
            switch target.layout {
            case .raw:
                let hashes = try await RawFileTarget.withNewFile(
                    at: target.path, size: size, replacing: target.replacing
                ) {
                    file throws(CopyError) in try await fill(file)
                }
                return Written(hashes: hashes)
            case .rawUpdate(let update):
                let hashes = try await RawFileTarget.withUpdate(of: target.path, size: size, describing: update) {
                    file throws(CopyError) in try await fill(file)
                }
                return Written(hashes: hashes)
            case .qcow2(let backing):
                let written = try await QCOW2FileTarget.write(
                    at: target.path, size: size, backing: try await backing?.resolved(for: target.path, size: size),
                    replacing: target.replacing, digesting: target.digestsImage, compression: target.compression,
                    output: target.output
                ) { file throws(CopyError) in try await fill(file) }
                return Written(digest: written.digest, hashes: written.result)
            }
        }

        /// Runs the pipeline from `source` into `file`, hashing the blocks on the way when the target asks; returns
        /// the block hashes then.
        private func copy(
            from source: some BlockSource, into file: some BlockTarget, pipeline: CopyPipeline
        ) async throws(CopyError) -> BlockHashTable? {
            let target = description.target
            guard target.hashesBlocks else {
                try await pipeline.run(from: source, to: file, mode: target.mode, progress: progress)
                return nil
            }
            let incremental = target.mode == .incremental
            let hashed = HashingTarget(file, size: source.size, base: incremental ? target.previousBlockHashes : nil)
            try await pipeline.run(from: source, to: hashed, mode: target.mode, progress: progress)
            // What an incremental does not write is the previous point's: without its hashes, the table is unknown.
            return incremental && target.previousBlockHashes == nil ? nil : hashed.table()
        }

        func summary(of written: Written, from source: some BlockSource, retries: Int) -> CopySummary {
            let target = description.target
            return CopySummary(
                mode: target.mode, format: target.format, exportSize: source.size, bytesRead: progress.bytesRead,
                bytesWritten: progress.bytesWritten, zeroBytes: progress.zeroBytes, extents: progress.extentCount,
                seconds: (ContinuousClock.now - started).inSeconds, connections: source.connectionCount,
                retries: retries, bytesReadFromExport: progress.bytesRead, imageDigest: written.digest,
                blockHashes: written.hashes)
        }
    }

    /// What writing the target gave besides the data: its file digest and its block hashes, when asked for.
    fileprivate struct Written: Sendable {
        var digest: SplitDigest?
        var hashes: BlockHashTable?
    }
}

extension CopyTarget.Backing {
    /// The backing image of an overlay at `overlay` for a source of `size` bytes.
    func resolved(for overlay: String, size: UInt64) async throws(CopyError) -> QCOW2FileTarget.Backing {
        switch self {
        case .image(let path, let allowDevices):
            try await QCOW2FileTarget.Backing.inspect(path, size: size, for: overlay, allowDevices: allowDevices)
        case .opened(let backing): backing
        }
    }
}
