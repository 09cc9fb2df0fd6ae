import FileIO
import Foundation
import Repository
import SystemPackage

/// A point's domain state (NVRAM, emulated TPM) as a restore puts it back: read from the point and checked against
/// its digests before anything is written.
///
/// The NVRAM becomes a file beside the restored images (``nvramName``), which a defined domain's `<nvram>` names. The
/// TPM's files go where libvirt looks for the new domain's TPM state (its uuid's folder under the driver's swtpm
/// storage), before the domain first starts: libvirt then gives them to swtpm's user and does not make a new TPM.
/// Without a domain to define they go into a `tpm2` (or `tpm1.2`) folder beside the images.
public struct RestoredState: Sendable {
    /// The NVRAM's bytes, when the point has one.
    public var nvram: [UInt8]?
    /// The TPM's state files, by name (`tpm2-00.permall`).
    public var tpmFiles: [(name: String, bytes: [UInt8])]

    /// No state: a point without any, or a restore that leaves it out.
    public static let none = RestoredState(nvram: nil, tpmFiles: [])

    /// The NVRAM file's name beside the restored images.
    public static let nvramName = "nvram.fd"

    public var isEmpty: Bool { nvram == nil && tpmFiles.isEmpty }

    /// What is put back, for a summary line: `NVRAM`, `TPM state`.
    public var kinds: [String] { (nvram == nil ? [] : ["NVRAM"]) + (tpmFiles.isEmpty ? [] : ["TPM state"]) }

    /// The folder the TPM's files belong in (`tpm2` or `tpm1.2`), when there are any.
    public var tpmFolderName: String? { tpmFiles.first.map { DomainStateFile.tpmFolder(of: $0.name) } }

    init(nvram: [UInt8]?, tpmFiles: [(name: String, bytes: [UInt8])]) {
        self.nvram = nvram
        self.tpmFiles = tpmFiles
    }

    /// The state `point` keeps, each file checked against its recorded size and digest.
    public static func read(from point: BackupPoint) throws(BackupError) -> RestoredState {
        var state = RestoredState.none
        for entry in point.manifest.state ?? [] {
            let bytes: [UInt8]
            do throws(RepositoryError) { bytes = try point.stateBytes(entry) } catch { throw BackupError(error) }
            switch entry.kind {
            case .nvram: state.nvram = bytes
            case .tpm: state.tpmFiles.append((entry.file, bytes))
            }
        }
        return state
    }

    /// The paths in `folder` a restore of this state writes there (the NVRAM file, the TPM's folder with
    /// `withTPM`) that exist already.
    public func existing(in folder: String, withTPM: Bool) -> [String] {
        var paths: [String] = []
        if nvram != nil { paths.append(folder + "/" + Self.nvramName) }
        if withTPM, let name = tpmFolderName { paths.append(folder + "/" + name) }
        return paths.filter(FilePaths.exists)
    }

    /// Writes the state into `folder`, beside restored images: the NVRAM as ``nvramName``, and with `withTPM` the TPM's
    /// files in their folder (`tpm2`); returns what it wrote, by kind (`NVRAM`, `TPM state`).
    public func write(into folder: String, withTPM: Bool, replacing: Bool) throws(BackupError)
        -> [(kind: String, path: String)]
    {
        var written: [(kind: String, path: String)] = []
        if nvram != nil {
            try writeNVRAM(to: folder + "/" + Self.nvramName, replacing: replacing)
            written.append(("NVRAM", folder + "/" + Self.nvramName))
        }
        if withTPM, let tpm = try writeTPM(into: folder, replacing: replacing) { written.append(("TPM state", tpm)) }
        return written
    }

    /// Writes the NVRAM to `path` (0600), replacing a file there when `replacing`, through a new file renamed over
    /// it; nothing when there is no NVRAM.
    public func writeNVRAM(to path: String, replacing: Bool) throws(BackupError) {
        guard let nvram else { return }
        try Self.write(nvram, to: path, replacing: replacing)
    }

    /// Writes the TPM's files into `parent/<tpm2|tpm1.2>/` (folder 0700, files 0600), making `parent` with `mode` if
    /// it is missing; returns the folder written, or nil when there are no TPM files. A folder that is there already is
    /// refused unless `replacing`.
    @discardableResult
    public func writeTPM(
        into parent: String, parentMode: FilePermissions = [.ownerRead, .ownerWrite, .ownerExecute], replacing: Bool
    ) throws(BackupError) -> String? {
        guard let name = tpmFolderName else { return nil }
        let folder = parent + "/" + name
        if FilePaths.exists(folder), !replacing {
            throw BackupError(
                .invalidRequest, "\(folder) exists; the TPM's state is not written over it without --overwrite")
        }
        do throws(Errno) {
            if !FilePaths.exists(parent) { try FilePaths.makeFolder(parent, permissions: parentMode) }
            if !FilePaths.exists(folder) {
                try FilePaths.makeFolder(folder, permissions: [.ownerRead, .ownerWrite, .ownerExecute])
            }
        } catch {
            throw BackupError(.invalidRequest, "cannot make \(folder) for the TPM's state: \(error)")
        }
        for file in tpmFiles { try Self.write(file.bytes, to: folder + "/" + file.name, replacing: replacing) }
        return folder
    }

    /// Writes `bytes` to a new 0600 file beside `path`, flushed, then given the name `path`: renamed over a file there
    /// when `replacing`, else linked, which fails on a name taken even meanwhile, and never replaces it.
    private static func write(_ bytes: [UInt8], to path: String, replacing: Bool) throws(BackupError) {
        let temporary = path + ".pullback-\(UInt32.random(in: .min ... .max)).tmp"
        do throws(Errno) {
            let descriptor = try FileDescriptor.createNew(path: temporary, .writeOnly)
            defer { descriptor.closeAfterUse() }
            try descriptor.write(bytes, at: 0)
            try descriptor.sync()
            if replacing {
                try FilePaths.rename(temporary, to: path)
            } else {
                defer { try? FilePaths.remove(temporary) }
                try FilePaths.link(temporary, as: path)
            }
        } catch {
            try? FilePaths.remove(temporary)
            if error == .fileExists {
                throw BackupError(.invalidRequest, "\(path) exists; restore with --overwrite to replace it")
            }
            throw BackupError(.invalidRequest, "cannot write \(path): \(error)")
        }
    }
}
