import Foundation

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// One `<disk>` element of a domain's XML.
public struct DomainDisk: Hashable, Sendable {
    /// What the guest sees: `<disk device='...'>`.
    public struct Device: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        /// A hard disk.
        public static let disk = Device(rawValue: "disk")
        /// A CD-ROM drive.
        public static let cdrom = Device(rawValue: "cdrom")
        /// A floppy drive.
        public static let floppy = Device(rawValue: "floppy")
        /// A SCSI LUN passed through.
        public static let lun = Device(rawValue: "lun")
        public var description: String { rawValue }
    }

    /// Where the data lives on the host: `<disk type='...'>`.
    public struct SourceType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        /// An image file (`<source file='...'>`).
        public static let file = SourceType(rawValue: "file")
        /// A block device (`<source dev='...'>`).
        public static let block = SourceType(rawValue: "block")
        /// A network disk (`<source protocol='...' name='...'>`).
        public static let network = SourceType(rawValue: "network")
        /// A storage pool volume (`<source pool='...' volume='...'>`).
        public static let volume = SourceType(rawValue: "volume")
        public var description: String { rawValue }
    }

    /// The device name the guest is told, e.g. `vda`: `<target dev='...'>`. Backups name disks by it.
    public var target: String
    /// What the guest sees.
    public var device: Device
    /// Where the data lives on the host.
    public var type: SourceType
    /// The image format, e.g. `qcow2` or `raw`: `<driver type='...'>`, nil when not given.
    public var format: String?
    /// The file or device path (`<source file>` or `<source dev>`), nil for an empty drive or another source.
    public var sourcePath: String?
    /// The bus, e.g. `virtio` or `sata`: `<target bus='...'>`, nil when not given.
    public var bus: String?
    /// Whether the disk is read-only (`<readonly/>`).
    public var isReadOnly: Bool

    /// Creates a disk description.
    public init(
        target: String, device: Device, type: SourceType, format: String?, sourcePath: String?,
        bus: String? = nil, isReadOnly: Bool = false
    ) {
        self.target = target
        self.device = device
        self.type = type
        self.format = format
        self.sourcePath = sourcePath
        self.bus = bus
        self.isReadOnly = isReadOnly
    }

    /// The disks of a domain XML document, in document order. Disks without a target are skipped.
    ///
    /// Throws ``LibvirtError/Code/xml`` when the document cannot be parsed or its root is not `<domain>`.
    /// Foundation's parser on Linux recovers from some malformed input (an unclosed element) instead of
    /// failing; the XML libvirt produces is always well-formed.
    public static func parse(domainXML: String) throws(LibvirtError) -> [DomainDisk] {
        let document: XMLDocument
        do {
            document = try XMLDocument(xmlString: domainXML, options: [])
        } catch {
            throw LibvirtError(.xml, "cannot parse the domain XML: \(error)")
        }
        guard document.rootElement()?.name == "domain" else {
            throw LibvirtError(.xml, "not a domain XML document: its root element is not <domain>")
        }
        let nodes: [XMLNode]
        do {
            nodes = try document.nodes(forXPath: "/domain/devices/disk")
        } catch {
            throw LibvirtError(.xml, "cannot read the disks of the domain XML: \(error)")
        }
        return nodes.compactMap { node -> DomainDisk? in
            guard let disk = node as? XMLElement else { return nil }
            func child(_ name: String) -> XMLElement? { disk.elements(forName: name).first }
            guard let target = child("target")?.attribute(forName: "dev")?.stringValue else { return nil }
            let type = SourceType(rawValue: disk.attribute(forName: "type")?.stringValue ?? "file")
            let source = child("source")
            let path = source?.attribute(forName: type == .block ? "dev" : "file")?.stringValue
            return DomainDisk(
                target: target,
                device: Device(rawValue: disk.attribute(forName: "device")?.stringValue ?? "disk"),
                type: type,
                format: child("driver")?.attribute(forName: "type")?.stringValue,
                sourcePath: path,
                bus: child("target")?.attribute(forName: "bus")?.stringValue,
                isReadOnly: child("readonly") != nil
            )
        }
    }
}

extension DomainDisk {
    /// A `<disk type='file'>` element naming the image at `path` in `format`: the destination of a block copy.
    static func imageXML(path: String, format: String) -> String {
        let disk = XMLElement(name: "disk")
        disk.setAttributesWith(["type": "file"])
        let source = XMLElement(name: "source")
        source.setAttributesWith(["file": path])
        let driver = XMLElement(name: "driver")
        driver.setAttributesWith(["type": format])
        disk.addChild(source)
        disk.addChild(driver)
        return disk.xmlString
    }
}
