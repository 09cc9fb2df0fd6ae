import Crypto
import FileIO
import Foundation
import Synchronization
import SystemPackage

/// The SHA-256 of a whole file, written as `sha256:<hex>`: what `sha256sum` prints for it. A point's manifest keeps
/// one per image, so bit rot or a tampered image is found (`pullback verify`) before a restore relies on it.
public enum ImageDigest {
    /// The prefix naming the algorithm, so that another one can follow.
    public static let prefix = "sha256:"

    /// Reads `path` on NIO's I/O thread pool, off Swift's cooperative pool, and returns its digest. Cancelling the
    /// task stops the read (with ``RepositoryError/Code/cancelled``), which a pool thread would not notice itself.
    /// `reading` is told the size of each chunk read, for a progress bar.
    public static func of(
        _ path: String, reading: @escaping @Sendable (Int) -> Void = { _ in }
    ) async throws(RepositoryError) -> String {
        let cancelled = CancellationFlag()
        let outcome = await withTaskCancellationHandler { () async -> Result<String, RepositoryError> in
            do throws(RepositoryError) {
                return .success(
                    try await BlockingWork.run { () throws(RepositoryError) -> String in
                        try ofFile(path, isCancelled: { cancelled.isSet }, reading: reading)
                    })
            } catch {
                return .failure(error)
            }
        } onCancel: {
            cancelled.set()
        }
        return try outcome.get()
    }

    /// Reads `path` from start to end and returns its digest. Blocking: call it from a thread of its own, not from
    /// Swift's cooperative pool. `isCancelled` is asked between reads (an image can take minutes); when it says
    /// yes, the read stops with ``RepositoryError/Code/cancelled``.
    public static func ofFile(
        _ path: String, isCancelled: () -> Bool = { false }, reading: (Int) -> Void = { _ in }
    ) throws(RepositoryError) -> String {
        // Confined: a symbolic link is not followed, and a FIFO or device is refused before anything is read (a
        // FIFO would block open without O_NONBLOCK, and /dev/zero would be read forever).
        let file = try FileSync.openConfined(path).file
        defer { file.closeAfterUse() }
        // Read once, in order: the kernel reads ahead, and the pages are of no further use to the backup.
        file.advise(.sequential)
        var hasher = SHA256()
        let chunk = 4 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 4096)
        defer { buffer.deallocate() }
        var offset: UInt64 = 0
        while true {
            if isCancelled() { throw RepositoryError(.cancelled, "reading \(path) for its digest was interrupted") }
            let count: Int
            do throws(Errno) { count = try file.read(into: buffer, at: offset) } catch {
                throw RepositoryError(failed: "read", path, error)
            }
            if count == 0 { break }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[..<count]))
            offset += UInt64(count)
            reading(count)
        }
        file.advise(.dontNeed)
        return prefix + hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}

/// Set once, read from any thread.
private final class CancellationFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set() { value.store(true, ordering: .relaxed) }
}
