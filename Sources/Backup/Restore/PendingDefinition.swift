import FileIO
import Libvirt
import SystemPackage
import UntrustedText

/// A domain to define once its restored images are written, checked before any of them is: the saved XML is
/// rewritten, and no domain has the new name yet. The connection stays open until ``define()`` or ``close()``, so
/// that the check and the definition speak to the same libvirt.
public struct PendingDefinition: Sendable {
    /// The XML to define, and what it leaves out of the saved one.
    public let definition: RestoredDomain.Definition
    /// The new domain's name.
    public let name: String
    /// Who the hypervisor runs QEMU as, when its capabilities say (a DAC security model); nil otherwise.
    public let qemuOwner: QemuProcessOwner?
    /// The domain state put back with the definition: its TPM's files go into the new domain's folder before it
    /// first starts (the NVRAM is a file the XML names, written by the caller).
    public let state: RestoredState
    private let connection: LibvirtConnection

    /// Rewrites `saved` for a domain `name` whose disks are `images` (see
    /// ``RestoredDomain/definition(from:name:images:format:emulators:nvram:)``), connects to `connectURI` (nil: the
    /// default URI) and checks that it has no domain of that name. Throws `.invalidRequest` when it has one,
    /// `.libvirt` when libvirt cannot be reached. `state` is put back with the definition; its NVRAM is named in the
    /// XML as `nvram`.
    public static func prepare(
        from saved: String, name: String, images: [String: String], format: String, connectURI: String?,
        state: RestoredState = .none, nvram: String? = nil
    ) async throws(BackupError) -> PendingDefinition {
        let connection = try await RestoreStep.libvirt { () async throws(LibvirtError) in
            try await LibvirtConnection.open(uri: connectURI)
        }
        // Without the capabilities no emulator is known to be the host's own, and a saved one is dropped.
        let capabilities = try? await connection.capabilities()
        let emulators = capabilities.map(HostEmulators.init(capabilities:)) ?? .none
        let domainType = QemuProcessOwner.domainType(of: saved)
        let owner = capabilities.flatMap { QemuProcessOwner(capabilities: $0, domainType: domainType) }
        let definition: RestoredDomain.Definition
        do throws(BackupError) {
            // Refused before any image is written, not once they all are.
            _ = try tpmStorage(for: state, uri: connection.uri)
            definition = try RestoredDomain.definition(
                from: saved, name: name, images: images, format: format, emulators: emulators,
                nvram: state.nvram == nil ? nil : nvram)
        } catch {
            await connection.close()
            throw error
        }
        do {
            _ = try await connection.domain(named: name)
        } catch  where error.code == .noDomain {
            return PendingDefinition(
                definition: definition, name: name, qemuOwner: owner, state: state, connection: connection)
        } catch {
            await connection.close()
            throw BackupError(error)
        }
        await connection.close()
        throw BackupError(
            .invalidRequest,
            "a domain named \(UntrustedText.escaped(name)) exists on \(connection.uri); choose another --define NAME, or undefine that domain first"
        )
    }

    /// The same definition with each disk of `targets` backed by its export on the unix socket `socket` (see
    /// ``RestoredDomain/backed(_:byExportsOf:socket:)``): for a live restore, whose images are overlays on them.
    public func backed(byExportsOf targets: [String], socket: String) throws(BackupError) -> PendingDefinition {
        var definition = definition
        definition.xml = try RestoredDomain.backed(definition.xml, byExportsOf: targets, socket: socket)
        return PendingDefinition(
            definition: definition, name: name, qemuOwner: qemuOwner, state: state, connection: connection)
    }

    /// Defines the domain (and with `starting`, starts it: a domain that cannot start is undefined again) and closes
    /// the connection.
    public func define(starting: Bool = false) async throws(BackupError) -> RestoredDomain.Defined {
        let (connection, xml) = (connection, definition.xml)
        do throws(BackupError) {
            let domain = try await RestoreStep.libvirt { () async throws(LibvirtError) in
                try await connection.define(xml: xml)
            }
            do throws(BackupError) { try await installTPMState(of: domain) } catch {
                try? await Self.undo(domain)
                throw error
            }
            if starting {
                do throws(BackupError) {
                    try await RestoreStep.libvirt { () async throws(LibvirtError) in try await domain.start() }
                } catch {
                    // A domain that cannot start on its exports is not left defined.
                    try? await Self.undo(domain)
                    throw error
                }
            }
            await connection.close()
            return RestoredDomain.Defined(name: domain.name, dropped: definition.dropped, state: state.kinds)
        } catch {
            await connection.close()
            throw error
        }
    }

    /// The folder under which the TPM files of `state` go for a domain of the driver `uri` names, nil when there are
    /// none; refused when that driver's folder is not known (only a local QEMU driver's is).
    private static func tpmStorage(for state: RestoredState, uri: String) throws(BackupError) -> String? {
        guard state.tpmFolderName != nil else { return nil }
        guard let storage = DomainStateLocation.swtpmStorage(of: uri) else {
            throw BackupError(
                .invalidRequest,
                "the point's TPM state cannot be put back through \(uri): only a local QEMU driver's folder is known (qemu:///system, qemu:///session, qemu:///embed)"
            )
        }
        return storage
    }

    /// Undefines `domain`, just defined, when it cannot be used: its NVRAM file (the restored one, beside the images)
    /// stays, which libvirt otherwise refuses to leave; the TPM state put in libvirt's folder for it goes with it.
    private static func undo(_ domain: Domain) async throws(LibvirtError) {
        try await domain.undefine(keepingNVRAM: true, removingTPMState: true)
    }

    /// Writes the TPM's files where libvirt looks for `domain`'s TPM state (its uuid's folder under the driver's
    /// swtpm storage, made as libvirt makes it: 0711, so that swtpm's user can pass), before it ever starts.
    private func installTPMState(of domain: Domain) async throws(BackupError) {
        guard let storage = try Self.tpmStorage(for: state, uri: connection.uri) else { return }
        let uuid = try await RestoreStep.libvirt { () async throws(LibvirtError) in try await domain.uuid() }
        let passable: FilePermissions = [.ownerRead, .ownerWrite, .ownerExecute, .groupExecute, .otherExecute]
        do throws(Errno) {
            if !FilePaths.exists(storage) { try FilePaths.makeFolder(storage, permissions: passable) }
        } catch {
            throw BackupError(.invalidRequest, "cannot make \(storage) for the TPM's state: \(error)")
        }
        try state.writeTPM(into: storage + "/" + uuid.lowercased(), parentMode: passable, replacing: false)
    }

    /// Closes the connection without defining anything.
    public func close() async {
        await connection.close()
    }
}
