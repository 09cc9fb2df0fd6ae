import FileIO
import SystemPackage

extension BackupMetricsFile {
    /// The file's text as it is, empty when there is no file yet.
    func readEarlier() throws(MetricsFileError) -> String {
        let file: FileDescriptor
        do throws(Errno) {
            file = try FileDescriptor.open(path: path, .readOnly)
        } catch .noSuchFileOrDirectory {
            return ""
        } catch {
            throw MetricsFileError(failed: "open", path, error)
        }
        defer { file.closeAfterUse() }
        let bytes: [UInt8]?
        do throws(Errno) { bytes = try file.readToEnd(limit: Self.sizeLimit) } catch {
            throw MetricsFileError(failed: "read", path, error)
        }
        guard let bytes else {
            throw MetricsFileError(
                .notMetrics,
                "\(path) is larger than \(Self.sizeLimit >> 20) MiB, which no metrics file of Pullback's is: give --metrics-file a file of its own"
            )
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Replaces the file with `text`: written to `<file>.tmp`, flushed, renamed over the file, and the folder flushed
    /// so that the rename survives a crash.
    func replace(with text: [UInt8]) throws(MetricsFileError) {
        let temporary = path + ".tmp"
        var step = "write"
        do throws(Errno) {
            let file = try FileDescriptor.open(
                path: temporary, .writeOnly, options: [.create, .truncate, .noFollow], permissions: Self.permissions)
            defer { file.closeAfterUse() }
            try file.setPermissions(Self.permissions)  // whatever the umask
            try file.write(text, at: 0)
            step = "flush"
            try file.sync()
            step = "replace"
            try FilePaths.rename(temporary, to: path)
        } catch {
            try? FilePaths.remove(temporary)
            throw MetricsFileError(failed: step, path, error)
        }
        let folder = FilePath(path).removingLastComponent().string
        do throws(Errno) { try FilePaths.syncFolder(folder.isEmpty ? "." : folder) } catch {
            throw MetricsFileError(failed: "flush the folder of", path, error)
        }
    }
}
