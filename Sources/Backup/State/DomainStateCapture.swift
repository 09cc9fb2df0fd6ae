import FileIO
import Foundation
import Logging
import Repository
import SystemPackage

/// Keeps a domain's state beyond its disks in each point: its NVRAM (UEFI variables) and its emulated TPM's state
/// files, read on this host where libvirt keeps them, right after the backup job began (the disks' moment), and
/// written whole into the point (sealed in an encrypted repository, like every object).
///
/// QEMU writes the NVRAM in place while the guest runs, so a file is read until two reads in a row agree: a point
/// never keeps a variable store torn by a write. swtpm replaces its state files whole (a new file renamed over the
/// old), and they are read the same way.
enum DomainStateCapture {
    /// How many times a file is read at most, waiting for two reads that agree.
    static let maxReads = 5

    /// Reads the state of `prepared`'s domain and writes it into `pending`; returns the manifest's entries, NVRAM
    /// first. A domain on a remote hypervisor, whose files libvirt does not hand out, gets one note and no entries.
    static func keep(_ prepared: PreparedBackup, into pending: PendingPoint, logger: Logger) async throws(BackupError)
        -> [DomainStateFile]
    {
        let domain = prepared.domain
        if let host = prepared.exportHost {
            // Any local driver's URI will do: only whether the XML has an NVRAM or an emulated TPM matters here.
            let saved = DomainStateLocation.of(liveXML: prepared.domainXML, uuid: prepared.uuid, uri: "qemu:///system")
            if !saved.isEmpty {
                logger.notice(
                    "\(domain.name)'s NVRAM and TPM state are files on \(host), which libvirt does not hand out: the point keeps its disks only"
                )
            }
            return []
        }
        // The live XML names the NVRAM file libvirt made at the first start, which an inactive one may not.
        let xml = (try? await domain.xmlDescription()) ?? prepared.domainXML
        let location = DomainStateLocation.of(liveXML: xml, uuid: prepared.uuid, uri: domain.connection.uri)
        for what in location.notKept { logger.notice("\(domain.name) has \(what): not kept in the point") }
        guard !location.isEmpty else { return [] }
        let (files, notes) = try await BlockingWork.run { () throws(BackupError) in try read(location) }
        for note in notes { logger.notice("\(domain.name): \(note)") }
        var entries: [DomainStateFile] = []
        for (kind, name, bytes) in files {
            try RunStep.repository { () throws(RepositoryError) in try pending.writeFile(bytes, to: name) }
            entries.append(DomainStateFile(kind: kind, file: name, bytes: bytes))
        }
        logger.info(
            "kept \(entries.map { "\($0.kind.rawValue) \($0.file) (\($0.size) bytes)" }.joined(separator: ", "))")
        return entries
    }

    /// The state files at `location`, as (kind, object name, bytes), and notes on what is not there yet.
    private static func read(_ location: DomainStateLocation) throws(BackupError)
        -> (files: [(DomainStateFile.Kind, String, [UInt8])], notes: [String])
    {
        var files: [(DomainStateFile.Kind, String, [UInt8])] = []
        var notes: [String] = []
        if let path = location.nvram {
            if let bytes = try settledContents(of: path, what: "NVRAM file") {
                files.append((.nvram, DomainStateFile.nvramName, bytes))
            } else {
                notes.append("its NVRAM file \(path) does not exist yet (libvirt makes it at the first start)")
            }
        }
        if let folder = location.tpmFolder {
            let names: [String]
            do {
                names = try FileManager.default.contentsOfDirectory(atPath: folder)
            } catch let error as CocoaError where error.code == .fileReadNoSuchFile {
                notes.append("its TPM has no state in \(folder) yet (swtpm makes it at the first start)")
                names = []
            } catch {
                throw BackupError(
                    .invalidRequest,
                    "cannot list the TPM state folder \(folder): \((error as NSError).localizedDescription); run as the user libvirt runs as (root for qemu:///system)"
                )
            }
            for name in names.filter(DomainStateFile.isTPMFileName).sorted() {
                if let bytes = try settledContents(of: folder + "/" + name, what: "TPM state file") {
                    files.append((.tpm, name, bytes))
                }
            }
        }
        return (files, notes)
    }

    /// The bytes of the file `path` once two reads in a row agree (the last read after ``maxReads``), or nil when
    /// there is no such file.
    private static func settledContents(of path: String, what: String) throws(BackupError) -> [UInt8]? {
        guard var previous = try contents(of: path, what: what) else { return nil }
        for _ in 1..<maxReads {
            guard let next = try contents(of: path, what: what) else { return nil }
            if next == previous { return next }
            previous = next
        }
        return previous
    }

    /// The whole regular file `path` (links followed: it is the hypervisor's own path), at most
    /// ``Repository/DomainStateFile/maxSize`` bytes; nil when there is none.
    private static func contents(of path: String, what: String) throws(BackupError) -> [UInt8]? {
        let descriptor: FileDescriptor
        do throws(ImageFileRefusal) {
            descriptor = try FileDescriptor.openChecked(path: path, followingSymlinks: true, allowingDevices: false).0
        } catch {
            if error.errno == .noSuchFileOrDirectory { return nil }
            throw BackupError(
                .invalidRequest,
                "cannot read the \(what): \(error.message(for: path)); run as the user libvirt runs as (root for qemu:///system)"
            )
        }
        defer { descriptor.closeAfterUse() }
        let bytes: [UInt8]?
        do throws(Errno) { bytes = try descriptor.readToEnd(limit: Int(DomainStateFile.maxSize)) } catch {
            throw BackupError(.invalidRequest, "cannot read the \(what) \(path): \(error)")
        }
        guard let bytes else {
            throw BackupError(
                .invalidRequest,
                "the \(what) \(path) is larger than \(DomainStateFile.maxSize) bytes, more than any firmware's or TPM's state; it is not kept"
            )
        }
        return bytes
    }
}

extension BackupError: BlockingWorkFailure {
    package static func interrupted() -> BackupError { BackupError(.interrupted, "interrupted") }

    package static func threadPoolUnavailable(_ error: any Error) -> BackupError {
        BackupError(.repository, "the I/O thread pool is not running: \(error)")
    }
}
