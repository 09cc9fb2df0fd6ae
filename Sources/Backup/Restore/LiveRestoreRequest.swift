import Foundation

/// What `pullback restore --live` is asked: a point booted as a new domain at once, its disks pulled in afterwards.
public struct LiveRestoreRequest: Sendable {
    /// The repository (`--repo`).
    public var repository: String
    /// The domain whose point is restored.
    public var domain: String
    /// The point: its id, or `latest`.
    public var point: String
    /// The disks restored (empty: every disk of the point).
    public var disks: [String]
    /// The new domain's name (`--define`).
    public var newName: String
    /// The folder the overlays go into (`--to`): new, or empty.
    public var folder: String
    /// The libvirt URI (nil: the default); only a local hypervisor can open the overlays and the export.
    public var connectURI: String?
    /// The pullback executable that serves the point from a process of its own.
    public var serverExecutable: String
    /// The key file of an encrypted repository, handed to the serving process.
    public var keyFile: String?
    /// The most bytes per second each disk's pull moves (0: as fast as it goes).
    public var pullBytesPerSecond: UInt

    /// A live restore of `point` of `domain` in `repository` as `newName`, with overlays in `folder`.
    public init(
        repository: String, domain: String, point: String, disks: [String] = [], newName: String, folder: String,
        connectURI: String?, serverExecutable: String, keyFile: String? = nil, pullBytesPerSecond: UInt = 0
    ) {
        self.repository = repository
        self.domain = domain
        self.point = point
        self.disks = disks
        self.newName = newName
        self.folder = folder
        self.connectURI = connectURI
        self.serverExecutable = serverExecutable
        self.keyFile = keyFile
        self.pullBytesPerSecond = pullBytesPerSecond
    }
}

/// A live restore under way, as its folder's `.pullback-live.json` records it, so that `--resume` (or a command
/// killed mid-pull, run again) finds the domain, the disks and the serving process.
public struct LiveRestoreState: Codable, Sendable, Equatable {
    /// The name of the file in the overlays' folder.
    public static let fileName = ".pullback-live.json"

    /// The new domain's name.
    public var newName: String
    /// The repository the point is read from (`--repo`), as the server was given it.
    public var repository: String
    /// The domain and point restored.
    public var domain: String
    public var point: String
    /// The disks pulled, by target.
    public var disks: [String]
    /// The serving process's id, and the socket of its exports.
    public var serverPID: Int32
    public var socket: String
    /// The overlays the domain starts on, by target.
    public var overlays: [String: String]
    /// The standalone images each disk is copied into and switched onto, by target.
    public var images: [String: String]
    /// Each disk's size in bytes, by target.
    public var sizes: [String: UInt64]
    /// The most bytes per second each disk's copy through QEMU moves; 0: no copy through QEMU, each image restored
    /// straight from the repository and only the guest's writes copied.
    public var pullBytesPerSecond: UInt
}
