import Foundation
import Libvirt

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// A new domain made from a point's saved `domain.xml`, with its disks replaced by restored images.
public enum RestoredDomain {
    /// The saved XML rewritten for a new domain `name`: no uuid (libvirt makes one), no MAC addresses
    /// (they would clash with the original's), each restored disk pointing at its image in `format`, and
    /// the disks that were not restored removed, so the copy never shares a disk with the original.
    public static func xml(
        from saved: String, name: String, images: [String: String], format: String
    ) throws(BackupError) -> String {
        let document: XMLDocument
        do {
            document = try XMLDocument(xmlString: saved, options: [])
        } catch {
            throw BackupError(.invalidRequest, "the saved domain XML cannot be read: \(error.localizedDescription)")
        }
        guard let root = document.rootElement(), root.name == "domain" else {
            throw BackupError(.invalidRequest, "the saved domain XML has no <domain> element")
        }
        for element in root.elements(forName: "name") { element.stringValue = name }
        for element in root.elements(forName: "uuid") { element.detach() }
        guard let devices = root.elements(forName: "devices").first else { return document.xmlString }
        for interface in devices.elements(forName: "interface") {
            for mac in interface.elements(forName: "mac") { mac.detach() }
        }
        for disk in devices.elements(forName: "disk") {
            let target = disk.elements(forName: "target").first?.attribute(forName: "dev")?.stringValue
            guard disk.attribute(forName: "device")?.stringValue ?? "disk" == "disk" else { continue }
            guard let target, let image = images[target] else {
                disk.detach()
                continue
            }
            disk.attribute(forName: "type")?.stringValue = "file"
            for source in disk.elements(forName: "source") { source.detach() }
            for backing in disk.elements(forName: "backingStore") { backing.detach() }
            let source = XMLElement(name: "source")
            source.addAttribute(XMLNode.attribute(withName: "file", stringValue: image) as! XMLNode)
            disk.addChild(source)
            if let driver = disk.elements(forName: "driver").first {
                driver.attribute(forName: "type")?.stringValue = format
            }
        }
        return document.xmlString
    }

    /// Defines the rewritten domain through `connectURI` (nil: the default URI) and returns its name.
    public static func define(
        from saved: String, name: String, images: [String: String], format: String, connectURI: String?
    ) async throws(BackupError) -> String {
        let xml = try xml(from: saved, name: name, images: images, format: format)
        let connection = try await BackupRun.libvirtStep { () async throws(LibvirtError) in
            try await LibvirtConnection.open(uri: connectURI)
        }
        do throws(BackupError) {
            let domain = try await BackupRun.libvirtStep { () async throws(LibvirtError) in
                try await connection.define(xml: xml)
            }
            await connection.close()
            return domain.name
        } catch {
            await connection.close()
            throw error
        }
    }
}
