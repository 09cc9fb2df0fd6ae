import Foundation

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// The emulator binaries a hypervisor offers, by guest architecture, as its capabilities XML lists them
/// (`<guest><arch name='x86_64'><emulator>...` and each `<domain>`'s own `<emulator>` under it).
///
/// A restored domain keeps its saved `<emulator>` only when it is one of these for its architecture: a saved XML may
/// come from another host or an edited repository, and any other path would make libvirt run that binary.
public struct HostEmulators: Sendable, Equatable {
    /// Emulator paths by architecture name.
    public var byArchitecture: [String: Set<String>]

    /// No emulator known: every saved `<emulator>` is dropped.
    public static let none = HostEmulators(byArchitecture: [:])

    public init(byArchitecture: [String: Set<String>]) {
        self.byArchitecture = byArchitecture
    }

    /// The emulators `capabilities` (virConnectGetCapabilities' XML) lists; none when it cannot be read.
    public init(capabilities: String) {
        var found: [String: Set<String>] = [:]
        let root = (try? XMLDocument(xmlString: capabilities, options: []))?.rootElement()
        for guest in root?.elements(forName: "guest") ?? [] {
            for arch in guest.elements(forName: "arch") {
                guard let name = arch.attribute(forName: "name")?.stringValue else { continue }
                let emulators =
                    arch.elements(forName: "emulator")
                    + arch.elements(forName: "domain").flatMap { (domain: XMLElement) in
                        domain.elements(forName: "emulator")
                    }
                found[name, default: []].formUnion(emulators.compactMap(\.stringValue))
            }
        }
        byArchitecture = found
    }

    /// Whether `path` is the host's own emulator for `architecture`.
    public func offers(_ path: String, for architecture: String) -> Bool {
        byArchitecture[architecture]?.contains(path) ?? false
    }
}
