import Foundation

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// Where a local QEMU driver keeps a domain's state beyond its disks: the NVRAM file its live XML names, and the
/// folder of its emulated TPM's state, which libvirt derives from the driver's storage folder and the domain's uuid
/// (`/var/lib/libvirt/swtpm/<uuid>/tpm2`) and never names in the XML.
struct DomainStateLocation: Sendable, Equatable {
    /// The NVRAM file (`<os><nvram>`), when the domain has one that is a file.
    var nvram: String?
    /// swtpm's state folder of the domain's emulated TPM, when it has one.
    var tpmFolder: String?
    /// What the domain has that is not kept, each for a note (a TPM passed through from the host, an NVRAM that is
    /// not a file).
    var notKept: [String] = []

    var isEmpty: Bool { nvram == nil && tpmFolder == nil }

    /// The locations of the domain whose live XML is `xml` and whose uuid is `uuid`, under the driver `uri` names.
    static func of(liveXML xml: String, uuid: String, uri: String) -> DomainStateLocation {
        guard let document = try? XMLDocument(xmlString: xml, options: [.nodeLoadExternalEntitiesNever]),
            let root = document.rootElement()
        else { return DomainStateLocation() }
        var location = DomainStateLocation()
        if let nvram = root.elements(forName: "os").first?.elements(forName: "nvram").first {
            switch nvram.attribute(forName: "type")?.stringValue ?? "file" {
            case "file":
                let source = nvram.elements(forName: "source").first?.attribute(forName: "file")?.stringValue
                let path = (source ?? nvram.stringValue ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
                if path.hasPrefix("/") { location.nvram = path }
            case let type:
                location.notKept.append("an NVRAM of type \(type), which is not a file")
            }
        }
        for tpm in root.elements(forName: "devices").flatMap({ $0.elements(forName: "tpm") }) {
            guard let backend = tpm.elements(forName: "backend").first else { continue }
            guard backend.attribute(forName: "type")?.stringValue == "emulator" else {
                location.notKept.append("a TPM passed through from the host, whose state is the host's")
                continue
            }
            let version = backend.attribute(forName: "version")?.stringValue ?? "2.0"
            if let storage = swtpmStorage(of: uri) {
                location.tpmFolder = storage + "/" + uuid.lowercased() + "/" + (version == "1.2" ? "tpm1.2" : "tpm2")
            }
        }
        return location
    }

    /// The folder a local QEMU driver keeps every emulated TPM's state under, as libvirt sets it: `ROOT/lib/swtpm` for
    /// the embedded driver (`qemu:///embed?root=ROOT`), `/var/lib/libvirt/swtpm` for `qemu:///system`, and
    /// `$XDG_CONFIG_HOME/libvirt/qemu/swtpm` (`~/.config/...`) for `qemu:///session`; nil for any other URI.
    static func swtpmStorage(
        of uri: String, environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> String? {
        guard let components = URLComponents(string: uri), let scheme = components.scheme,
            scheme == "qemu" || scheme == "qemu+unix"
        else { return nil }
        switch components.path {
        case "/embed":
            let root = components.queryItems?.first { $0.name == "root" }?.value
            return root.flatMap { $0.hasPrefix("/") ? $0 + "/lib/swtpm" : nil }
        case "/system":
            return "/var/lib/libvirt/swtpm"
        case "/session":
            if let config = environment["XDG_CONFIG_HOME"], config.hasPrefix("/") {
                return config + "/libvirt/qemu/swtpm"
            }
            return environment["HOME"].flatMap { $0.hasPrefix("/") ? $0 + "/.config/libvirt/qemu/swtpm" : nil }
        default:
            return nil
        }
    }
}
