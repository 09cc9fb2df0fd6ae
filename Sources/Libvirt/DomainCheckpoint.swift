import Foundation

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// A checkpoint of a domain: a named point in time from which libvirt can tell which blocks changed.
///
/// A value holding the domain and the checkpoint's name; every method looks the checkpoint up by name, so a
/// value outlives a redefinition of the same checkpoint.
public struct DomainCheckpoint: Sendable {
    /// The domain the checkpoint belongs to.
    public let domain: Domain
    /// The checkpoint's name.
    public let name: String

    /// The checkpoint's XML, e.g. to redefine it later with ``Domain/createCheckpoint(xml:redefine:)``.
    /// The corresponding C function is `virDomainCheckpointGetXMLDesc`.
    public func xmlDescription() async throws(LibvirtError) -> String {
        let name = self.name
        return try await domain.perform { (dom) throws(LibvirtError) in try Virt.checkpointXML(dom, named: name) }
    }

    /// The text of the checkpoint's `<description>`, nil when it has none. Whoever made the checkpoint wrote it: a
    /// caller treats it as untrusted text. Reads ``xmlDescription()``.
    public func descriptionText() async throws(LibvirtError) -> String? {
        try Self.descriptionText(inXML: try await xmlDescription())
    }

    /// The text of `<description>` in a `<domaincheckpoint>` document, nil when it has none. Throws
    /// ``LibvirtError/Code/xml`` when the document cannot be parsed or its root is not `<domaincheckpoint>`.
    public static func descriptionText(inXML xml: String) throws(LibvirtError) -> String? {
        let document: XMLDocument
        do {
            document = try XMLDocument(xmlString: xml, options: [])
        } catch {
            throw LibvirtError(.xml, "cannot parse the checkpoint XML: \(error)")
        }
        guard let root = document.rootElement(), root.name == "domaincheckpoint" else {
            throw LibvirtError(.xml, "the checkpoint XML is not a <domaincheckpoint> document")
        }
        return root.elements(forName: "description").first?.stringValue
    }

    /// Deletes the checkpoint; libvirt merges its bitmap into its parent's so later checkpoints stay usable.
    /// With `metadataOnly`, only libvirt's record goes and the bitmaps in the images stay.
    /// The corresponding C function is `virDomainCheckpointDelete`.
    public func delete(metadataOnly: Bool = false) async throws(LibvirtError) {
        let name = self.name
        try await domain.perform { (dom) throws(LibvirtError) in
            try Virt.deleteCheckpoint(dom, named: name, metadataOnly: metadataOnly)
        }
    }
}

extension Domain {
    /// Creates a checkpoint from `<domaincheckpoint>` XML and returns it.
    ///
    /// With `redefine`, the XML is one saved from ``DomainCheckpoint/xmlDescription()`` and only libvirt's
    /// record is re-created (the bitmaps must still be in the images). The corresponding C function is
    /// `virDomainCheckpointCreateXML`.
    public func createCheckpoint(xml: String, redefine: Bool = false) async throws(LibvirtError) -> DomainCheckpoint {
        let name = try await perform { (dom) throws(LibvirtError) in
            try Virt.createCheckpoint(dom, xml: xml, redefine: redefine)
        }
        return DomainCheckpoint(domain: self, name: name)
    }

    /// The names of the domain's checkpoints, parents before their children.
    /// The corresponding C function is `virDomainListAllCheckpoints`.
    public func checkpointNames() async throws(LibvirtError) -> [String] {
        try await perform { (dom) throws(LibvirtError) in try Virt.checkpointNames(dom) }
    }

    /// The checkpoint with this name; throws ``LibvirtError/Code/noCheckpoint`` with libvirt's message
    /// when there is none. The corresponding C function is `virDomainCheckpointLookupByName`.
    public func checkpoint(named name: String) async throws(LibvirtError) -> DomainCheckpoint {
        try await perform { (dom) throws(LibvirtError) in try Virt.checkpointExists(dom, named: name) }
        return DomainCheckpoint(domain: self, name: name)
    }
}
