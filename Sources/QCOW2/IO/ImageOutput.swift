import Synchronization

/// Where a qcow2 image is written when it is not a local file: an object of a store (a bucket's multipart upload).
///
/// The writer writes each byte at most once, at offsets in any order (data clusters where it places them, tables
/// after them, the header at offset 0 last), and calls ``finish(size:)`` once the image is complete; nothing may be
/// visible under the output's name before that. Bytes never written read as zeros up to the final size.
public protocol ImageOutput: AnyObject, Sendable {
    /// The image's name, for messages (a URL for an object).
    var name: String { get }

    /// Writes `bytes` at `offset`; may block while earlier writes drain (bounded memory).
    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(QCOW2Error)

    /// Makes the image of `size` bytes durable and visible under its name.
    func finish(size: UInt64) throws(QCOW2Error)

    /// Gives the image up: nothing of it stays.
    func discard()
}

/// The writer's sink over an ``ImageOutput``: hashes what is written when asked for a digest, remembers the size the
/// writer sets, and finishes the output when the writer seals the image.
final class OutputSink: ImageSink {
    let output: any ImageOutput
    let digest: AppendDigest?
    private let state = Mutex<(size: UInt64, finished: Bool)>((0, false))

    init(_ output: any ImageOutput, digest: AppendDigest?) {
        self.output = output
        self.digest = digest
    }

    var path: String { output.name }

    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64, hashing: Bool) throws(QCOW2Error) {
        try output.write(bytes, at: offset)
        if hashing { digest?.wrote(bytes, at: offset) }
    }

    func truncate(to size: UInt64) throws(QCOW2Error) {
        state.withLock { $0.size = size }
    }

    /// Nothing to flush before the header: an object's parts are durable once uploaded, and none is visible before
    /// ``seal()``.
    func sync() throws(QCOW2Error) {}

    func seal() throws(QCOW2Error) {
        let size = state.withLock { $0.size }
        try output.finish(size: size)
        state.withLock { $0.finished = true }
    }

    func close() {
        if !state.withLock({ $0.finished }) { output.discard() }
    }
}
