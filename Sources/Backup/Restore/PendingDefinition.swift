import Libvirt
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
    private let connection: LibvirtConnection

    /// Rewrites `saved` for a domain `name` whose disks are `images` (see
    /// ``RestoredDomain/definition(from:name:images:format:)``), connects to `connectURI` (nil: the default URI) and
    /// checks that it has no domain of that name. Throws `.invalidRequest` when it has one, `.libvirt` when libvirt
    /// cannot be reached.
    public static func prepare(
        from saved: String, name: String, images: [String: String], format: String, connectURI: String?
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
            definition = try RestoredDomain.definition(
                from: saved, name: name, images: images, format: format, emulators: emulators)
        } catch {
            await connection.close()
            throw error
        }
        do {
            _ = try await connection.domain(named: name)
        } catch  where error.code == .noDomain {
            return PendingDefinition(definition: definition, name: name, qemuOwner: owner, connection: connection)
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
        return PendingDefinition(definition: definition, name: name, qemuOwner: qemuOwner, connection: connection)
    }

    /// Defines the domain (and with `starting`, starts it: a domain that cannot start is undefined again) and closes
    /// the connection.
    public func define(starting: Bool = false) async throws(BackupError) -> RestoredDomain.Defined {
        let (connection, xml) = (connection, definition.xml)
        do throws(BackupError) {
            let domain = try await RestoreStep.libvirt { () async throws(LibvirtError) in
                try await connection.define(xml: xml)
            }
            if starting {
                do throws(BackupError) {
                    try await RestoreStep.libvirt { () async throws(LibvirtError) in try await domain.start() }
                } catch {
                    // A domain that cannot start on its exports is not left defined.
                    try? await domain.undefine()
                    throw error
                }
            }
            await connection.close()
            return RestoredDomain.Defined(name: domain.name, dropped: definition.dropped)
        } catch {
            await connection.close()
            throw error
        }
    }

    /// Closes the connection without defining anything.
    public func close() async {
        await connection.close()
    }
}
