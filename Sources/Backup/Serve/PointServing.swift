import QCOW2
import Repository
import Server

/// `pullback serve --repo`: the disks of a backup point as NBD exports.
public enum PointServing {
    /// The disks of `point` as exports named by their targets, each read from exactly the images its
    /// ``PointChain`` lists (nothing a header names outside the repository is opened), with the clusters the point
    /// itself holds as the dirty bitmap `backup-<target>`: what changed since its parent, or everything allocated for
    /// a full point. A disk whose image is standalone in a point that has a parent (a raw disk, or one added since)
    /// has the whole disk marked: nothing says what changed, and a replica must not keep its parent's data where the
    /// image now reads as zeros. `point` must have been read from a repository.
    public static func exports(of point: BackupPoint) throws(BackupError) -> [ServedExport] {
        let (repository, domain) = try PointChain.location(of: point)
        var exports: [ServedExport] = []
        for disk in point.manifest.disks {
            let layers = try PointChain.of(disk.target, at: point, domain: domain, in: repository).expectedLayers
            let chain: QCOW2Chain
            do { chain = try QCOW2Chain(exactly: layers) } catch {
                throw BackupError(.repository, "cannot serve \(disk.target) of point \(point.id): \(error.message)")
            }
            exports.append(
                ServedExport(
                    name: disk.target, chain: chain, bitmap: "backup-" + disk.target,
                    bitmapMarksEverything: point.manifest.parent != nil && disk.backingImage == nil))
        }
        return exports
    }
}
