import Foundation
import Libvirt
import UntrustedText

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// A new domain made from a point's saved `domain.xml`, with its disks replaced by restored images.
///
/// The saved XML comes from a repository, which may have been edited or come from another host, so only what a
/// restored VM needs is kept: nothing that reaches into the host (host devices, shared folders, qemu command-line
/// passthrough, a custom emulator binary) and no disk but the restored ones.
public enum RestoredDomain {
    /// The XML to define, and what was left out of the saved XML.
    public struct Definition: Sendable, Equatable {
        /// The domain XML to define.
        public var xml: String
        /// What was left out, one entry per kind, for a note: `"<hostdev> (2)"`, `"cdrom disk sda"`.
        public var dropped: [String]
    }

    /// A defined domain: its name and what its XML left out of the saved one.
    public struct Defined: Sendable, Equatable {
        /// The new domain's name.
        public var name: String
        /// See ``Definition/dropped``.
        public var dropped: [String]
        /// The domain state put back with it (`NVRAM`, `TPM state`).
        public var state: [String] = []
    }

    /// The namespace of libvirt's QEMU passthrough elements (`<qemu:commandline>`, `<qemu:capabilities>`, ...).
    static let qemuNamespace = "http://libvirt.org/schemas/domain/qemu/1.0"

    /// The saved XML rewritten for a new domain `name`: no uuid (libvirt makes one), no MAC addresses (they
    /// would clash with the original's), each restored disk pointing at its image in `format`; and left out,
    /// so that the copy never shares a disk with the original nor reaches into the host: the disks that were
    /// not restored, cdrom, floppy and lun disks, `<hostdev>` and `<filesystem>` devices, an `<emulator>` that is
    /// not one of `emulators` for the domain's architecture (libvirt then picks its default), every element of
    /// the qemu passthrough namespace, a TPM of the host's and firmware from outside the firmware folders. Its
    /// `<nvram>` names `nvram`, the restored variable store, or none (libvirt makes one from the template): never
    /// the original's (``rewriteFirmware(_:nvram:dropped:)``).
    public static func definition(
        from saved: String, name: String, images: [String: String], format: String,
        emulators: HostEmulators = .none, nvram: String? = nil
    ) throws(BackupError) -> Definition {
        let (document, root) = try parsed(saved)
        var dropped = DroppedKinds()
        for os in root.elements(forName: "os") { rewriteFirmware(os, nvram: nvram, dropped: &dropped) }
        for element in root.elements(forName: "name") { element.stringValue = name }
        for element in root.elements(forName: "uuid") { element.detach() }
        for element in qemuElements(under: root) {
            dropped.add("<\(element.name ?? "qemu")>")
            element.detach()
        }
        root.namespaces = root.namespaces?.filter { $0.stringValue != qemuNamespace }
        let architecture =
            root.elements(forName: "os").first?.elements(forName: "type").first?.attribute(forName: "arch")?
            .stringValue ?? ""
        for devices in root.elements(forName: "devices") {
            for emulator in devices.elements(forName: "emulator")
            where !emulators.offers(emulator.stringValue ?? "", for: architecture) {
                dropped.add("<emulator> \(UntrustedText.escaped(emulator.stringValue ?? ""))")
                emulator.detach()
            }
            rewrite(devices, images: images, format: format, dropped: &dropped)
            rewriteTPMs(devices, dropped: &dropped)
        }
        return Definition(xml: document.xmlString, dropped: dropped.kinds)
    }

    /// The saved XML as a document and its `<domain>` element; refused when it is not what libvirt writes, not
    /// well-formed, or not a domain.
    private static func parsed(_ saved: String) throws(BackupError) -> (XMLDocument, XMLElement) {
        if let refusal = SavedDomainXML.refusal(of: saved) {
            throw BackupError(
                .invalidRequest,
                "the point's saved domain.xml is not read: \(refusal), which libvirt never writes and which could pull the host's files into the new domain; restore without --define"
            )
        }
        let document: XMLDocument
        do {
            document = try XMLDocument(xmlString: saved, options: [.nodeLoadExternalEntitiesNever])
        } catch {
            // Foundation's own text for a parser error says nothing ("The operation could not be completed").
            let parser = error as NSError
            throw BackupError(
                .invalidRequest,
                "the point's saved domain.xml is not well-formed XML (XML parser error \(parser.code)); run pullback verify on the point, or restore without --define"
            )
        }
        guard let root = document.rootElement(), root.name == "domain" else {
            throw BackupError(.invalidRequest, "the saved domain XML has no <domain> element")
        }
        return (document, root)
    }

    /// Leaves out of `devices` the host's devices and folders, the MAC addresses and the disks not restored; points
    /// each restored disk at its image.
    private static func rewrite(
        _ devices: XMLElement, images: [String: String], format: String, dropped: inout DroppedKinds
    ) {
        for kind in ["hostdev", "filesystem"] {
            for element in devices.elements(forName: kind) {
                dropped.add("<\(kind)>")
                element.detach()
            }
        }
        for interface in devices.elements(forName: "interface") {
            for mac in interface.elements(forName: "mac") { mac.detach() }
        }
        for disk in devices.elements(forName: "disk") {
            let target = disk.elements(forName: "target").first?.attribute(forName: "dev")?.stringValue
            let device = disk.attribute(forName: "device")?.stringValue ?? "disk"
            guard device == "disk", let target, let image = images[target] else {
                dropped.add(device == "disk" ? "disks not restored" : "\(device) disks")
                disk.detach()
                continue
            }
            point(disk, at: image, format: format)
        }
    }

    /// The rewritten XML alone; see ``definition(from:name:images:format:)``.
    public static func xml(
        from saved: String, name: String, images: [String: String], format: String,
        emulators: HostEmulators = .none
    ) throws(BackupError) -> String {
        try definition(from: saved, name: name, images: images, format: format, emulators: emulators).xml
    }

    /// Defines the rewritten domain through `connectURI` (nil: the default URI); refused when a domain has the name.
    /// To check that before the images are written, use ``PendingDefinition``.
    public static func define(
        from saved: String, name: String, images: [String: String], format: String, connectURI: String?
    ) async throws(BackupError) -> Defined {
        try await PendingDefinition.prepare(
            from: saved, name: name, images: images, format: format, connectURI: connectURI
        ).define()
    }

    /// A restored disk becomes a plain file disk on its image: no source or backing chain of the original.
    private static func point(_ disk: XMLElement, at image: String, format: String) {
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

    /// Every element in the qemu passthrough namespace, however it is prefixed, outermost first.
    private static func qemuElements(under element: XMLElement) -> [XMLElement] {
        var found: [XMLElement] = []
        for child in element.children ?? [] {
            guard let child = child as? XMLElement else { continue }
            // FoundationXML crashes on `prefix` of an unprefixed node, and gives such a node the URI of a namespace
            // it merely declares: only a prefixed name says the element is in a namespace.
            let name = child.name ?? ""
            if name.hasPrefix("qemu:") || (name.contains(":") && child.uri == qemuNamespace) {
                found.append(child)
            } else {
                found += qemuElements(under: child)
            }
        }
        return found
    }
}

/// The kinds of element left out, in the order met, each with how many times.
struct DroppedKinds {
    private var counts: [(kind: String, count: Int)] = []

    mutating func add(_ kind: String) {
        if let index = counts.firstIndex(where: { $0.kind == kind }) {
            counts[index].count += 1
        } else {
            counts.append((kind, 1))
        }
    }

    var kinds: [String] { counts.map { $0.count == 1 ? $0.kind : "\($0.kind) (\($0.count))" } }
}
