import Foundation

#if canImport(FoundationXML)
    import FoundationXML
#endif

extension RestoredDomain {
    /// `xml` (a definition made by ``definition(from:name:images:format:emulators:)``) with each disk of `exports`
    /// given the backing its overlay image has: the NBD export named by its target on the unix socket `socket`, in
    /// format raw. libvirt then knows the chain the overlay starts on, and pulls it with a block pull.
    static func backed(_ xml: String, byExportsOf targets: [String], socket: String) throws(BackupError) -> String {
        let document: XMLDocument
        do {
            document = try XMLDocument(xmlString: xml, options: [.nodeLoadExternalEntitiesNever])
        } catch {
            throw BackupError(.invalidRequest, "the rewritten domain XML does not parse again: \(error)")
        }
        guard let root = document.rootElement() else {
            throw BackupError(.invalidRequest, "the rewritten domain XML has no root element")
        }
        for devices in root.elements(forName: "devices") {
            for disk in devices.elements(forName: "disk") {
                guard let target = disk.elements(forName: "target").first?.attribute(forName: "dev")?.stringValue,
                    targets.contains(target)
                else { continue }
                disk.addChild(backingStore(export: target, socket: socket))
            }
        }
        return document.xmlString
    }

    /// `<backingStore type='network'><format type='raw'/><source protocol='nbd' name='EXPORT'><host
    /// transport='unix' socket='SOCKET'/></source><backingStore/></backingStore>`.
    private static func backingStore(export: String, socket: String) -> XMLElement {
        func element(_ name: String, _ attributes: [String: String], _ children: [XMLElement] = []) -> XMLElement {
            let made = XMLElement(name: name)
            for (key, value) in attributes.sorted(by: { $0.key < $1.key }) {
                made.addAttribute(XMLNode.attribute(withName: key, stringValue: value) as! XMLNode)
            }
            for child in children { made.addChild(child) }
            return made
        }
        return element(
            "backingStore", ["type": "network"],
            [
                element("format", ["type": "raw"]),
                element(
                    "source", ["protocol": "nbd", "name": export],
                    [element("host", ["transport": "unix", "socket": socket])]),
                element("backingStore", [:]),
            ])
    }
}
