import Engine
import Foundation
import QCOW2
import Repository

/// `pullback restore`: disks of a backup point written out as standalone images, all at once.
public enum PointRestore {
    /// One restored disk.
    public struct Restored: Sendable, Equatable {
        /// The disk's target, e.g. `vda`.
        public var target: String
        /// The image written, `<folder>/<target>.<format>`.
        public var path: String
        /// Data bytes written into it.
        public var bytesWritten: UInt64
    }

    /// Writes disks `targets` (empty: every disk) of `point` into `folder` (created 0700 if missing) as
    /// `<target>.<format>`, concurrently, counting into `progress` when given (one part per disk, each mapped first
    /// so that the job's total is known early). Results are in the order of `targets`, else of the manifest. On
    /// failure no image of a disk that failed is left behind.
    ///
    /// `point` must have been read from a repository (its folder is `<repository>/<domain>/<id>`). Each disk is
    /// read from exactly the images its ``PointChain`` lists, and each image's header must name the next one as
    /// the manifests say: a repository cannot make a restore read a file outside itself.
    public static func run(
        _ point: BackupPoint, disks targets: [String], to folder: String, format: TargetFormat,
        progress: JobProgress? = nil
    ) async throws(BackupError) -> [Restored] {
        let available = point.manifest.disks.map(\.target)
        let chosen = targets.isEmpty ? available : targets
        let (repository, domain) = try PointChain.location(of: point)
        var images: [(target: String, layers: [QCOW2Chain.ExpectedLayer])] = []
        for target in chosen {
            guard available.contains(target) else {
                throw BackupError(
                    .invalidRequest,
                    "point \(point.id) of \(point.manifest.domainName) has no disk \(PointChain.printable(target)); it has \(available.map(PointChain.printable).joined(separator: ", "))"
                )
            }
            let chain = try PointChain.of(target, at: point, domain: domain, in: repository)
            images.append((target, chain.expectedLayers))
        }
        do {
            try FileManager.default.createDirectory(
                atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw BackupError(.invalidRequest, "cannot create the folder \(folder): \(error.localizedDescription)")
        }
        progress?.expect(parts: images.count)
        // One pool for all the disks: memory stays that of one disk's restore however many are written.
        let buffers = BufferPool(count: ImageRestore.requestsInFlight, bufferSize: CopyRequest.defaultRequestSize)
        do {
            return try await withThrowingTaskGroup(of: (Int, Restored).self) { group in
                for (index, disk) in images.enumerated() {
                    let output = folder + "/" + disk.target + "." + format.rawValue
                    group.addTask {
                        let counters = progress?.start(disk.target) ?? CopyProgress()
                        defer { progress?.finish(counters) }
                        let summary = try await ImageRestore.run(
                            exactly: disk.layers, to: output, format: format, progress: counters,
                            measureTotal: progress != nil, buffers: buffers)
                        return (index, Restored(target: disk.target, path: output, bytesWritten: summary.bytesWritten))
                    }
                }
                var restored: [Restored?] = Array(repeating: nil, count: images.count)
                for try await (index, disk) in group { restored[index] = disk }
                return restored.compactMap { $0 }
            }
        } catch let error as CopyError where error.code == .interrupted || Task.isCancelled {
            throw BackupError(.interrupted, error.message, cause: error)
        } catch let error as CopyError {
            throw BackupError(.copy, error.message, cause: error)
        } catch {
            throw BackupError(.interrupted, "interrupted")
        }
    }
}
