import FileIO
import SystemPackage

/// A raw disk image file as a copy target: a new sparse file for a full copy, or an existing one updated in
/// place by an incremental copy.
///
/// ``Copy/run(_:progress:)`` uses it through ``withNewFile(at:size:replacing:_:)`` or
/// ``withUpdate(of:size:describing:_:)`` (a ``CopyTarget`` says which): the scope
/// commits the file (durably) when the body returns, and leaves nothing that looks like a good copy when
/// it throws.
public final class RawFileTarget: BlockTarget {
    /// The file the target becomes once committed.
    public let path: String
    private let file: TargetFile
    /// Makes every call on the file, one at a time (see ``WriterThread``).
    private let writer: WriterThread

    private init(path: String, file: TargetFile, writer: WriterThread) {
        self.path = path
        self.file = file
        self.writer = writer
    }

    // MARK: Scopes

    /// A full copy into a new sparse file of `size` bytes at `path`.
    ///
    /// The data goes to a temporary file beside `path`, which is flushed and renamed to `path` only after
    /// `body` succeeds; a failure removes it, so an existing file at `path` stays as it was. An existing
    /// file is replaced only when `replacing` is true, and keeps its mode; a new file is 0600 whatever the
    /// umask. A successful copy also clears an update marker.
    static func withNewFile<Result: Sendable>(
        at path: String, size: UInt64, replacing: Bool,
        _ body: (RawFileTarget) async throws(CopyError) -> Result
    ) async throws(CopyError) -> Result {
        try NewFile.checkReplaceable(path, replacing: replacing)
        guard size <= UInt64(Int64.max) else {
            throw CopyError(
                .targetMismatch, "the source is \(size) bytes, more than a file can hold (\(Int64.max) bytes)")
        }
        return try await WriterThread.with { writer async throws(CopyError) -> Result in
            let temporary = NewFile.temporaryPath(for: path)
            let target = try await writer.run { () throws(CopyError) -> RawFileTarget in
                TargetPaths.remove(temporary)  // a leftover of a run that was killed
                let permissions = NewFile.permissions(for: path, replacing: replacing)
                let file = try TargetFile.create(temporary, permissions: permissions)
                do throws(CopyError) {
                    try file.truncate(to: size)
                } catch {
                    file.close()
                    TargetPaths.remove(temporary)
                    throw error
                }
                return RawFileTarget(path: path, file: file, writer: writer)
            }
            let result: Result
            do throws(CopyError) {
                result = try await body(target)
                try await writer.run { () throws(CopyError) in try target.file.sync() }
            } catch {
                // Also when the flush never ran because the task was cancelled: the descriptor is closed either way.
                target.file.close()
                TargetPaths.remove(temporary)
                throw error
            }
            target.file.close()
            try await NewFile.commit(temporary, as: path)
            return result
        }
    }

    /// An in-place update of the existing file at `path`, which must be `size` bytes long.
    ///
    /// An update marker is written durably before `body` runs and removed only after the file is flushed;
    /// while it exists, further updates are refused (see ``UpdateMarker``).
    static func withUpdate<Result: Sendable>(
        of path: String, size: UInt64, describing update: String,
        _ body: (RawFileTarget) async throws(CopyError) -> Result
    ) async throws(CopyError) -> Result {
        return try await WriterThread.with { writer async throws(CopyError) -> Result in
            let marker = UpdateMarker(targetPath: path)
            let target = try await writer.run { () throws(CopyError) -> RawFileTarget in
                try marker.checkAbsent()
                let file = try TargetFile.open(path, .writeOnly)
                do throws(CopyError) {
                    let existing = try file.size()
                    guard existing == size else {
                        throw CopyError(
                            .targetMismatch,
                            "\(path) is \(existing) bytes but the source is \(size) bytes; an incremental update needs the target of the previous copy of this disk"
                        )
                    }
                    try marker.create(describing: update)
                } catch {
                    file.close()
                    throw error
                }
                return RawFileTarget(path: path, file: file, writer: writer)
            }
            // Whatever fails from here on, the marker stays: the file may now mix two points in time.
            let result: Result
            do throws(CopyError) {
                result = try await body(target)
                try await writer.run { () throws(CopyError) in try target.file.sync() }
            } catch {
                // Also when the flush never ran because the task was cancelled: the descriptor is closed either way.
                target.file.close()
                throw error
            }
            target.file.close()
            try await writer.run { () throws(CopyError) in
                try marker.remove()
            }
            return result
        }
    }

    // MARK: BlockTarget

    public func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) async throws(CopyError) {
        let borrowed = Borrowed(pointer: bytes)
        try await writer.run { [file] () throws(CopyError) in
            try file.write(borrowed.pointer, at: offset)
        }
    }

    public func writeZeros(at offset: UInt64, length: UInt64) async throws(CopyError) {
        try await writer.run { [file] () throws(CopyError) in
            try file.punchHole(at: offset, length: length)
        }
    }
}
