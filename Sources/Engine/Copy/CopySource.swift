import QCOW2

/// What a copy reads: an NBD export, a qcow2 chain, or an export a backup has open and reads through a check or over
/// an earlier copy of the disk.
public enum CopySource: Sendable {
    /// The NBD export at `uri`; with `bitmap`, the extents that dirty bitmap marks are the ones an incremental copies.
    case export(uri: String, bitmap: String?)
    /// The qcow2 chain whose top is `path`, opened by qemu's rules (``QCOW2ChainSource/open(path:allowDevices:)``):
    /// for an image the caller chose, whatever its headers name. Devices in it are read only with `allowDevices`.
    case image(path: String, allowDevices: Bool)
    /// Exactly the images `layers`, top first (``QCOW2ChainSource/open(exactly:)``): a repository's chain, where
    /// nothing a header names is opened and each must name the expected backing file.
    case chain([QCOW2Chain.ExpectedLayer])
    /// An export the caller opened (``NBDBlockSource/withSource(uri:bitmap:transfer:_:)``) and closes.
    case openExport(NBDBlockSource)
    /// An export the caller opened, its map widened by what a source check found changed (``CheckedSource``).
    case checkedExport(CheckedSource<NBDBlockSource>)
    /// An export the caller opened, laid over an earlier copy of the disk (``LayeredSource``): a synthetic full,
    /// which reads from the export only what its bitmap marks.
    case layeredExport(LayeredSource<CheckedSource<NBDBlockSource>, QCOW2ChainSource>)

    /// The chain whose top is `path`, by qemu's rules, with no device allowed in it.
    public static func image(path: String) -> CopySource { .image(path: path, allowDevices: false) }
}
