import Foundation

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// The user and group a hypervisor runs QEMU as, from its capabilities XML: the DAC security model's base label
/// (`<host><secmodel><model>dac</model><baselabel type='kvm'>+64055:+994</baselabel>`), which is qemu.conf's
/// `user` and `group`. Without a DAC model (`security_driver = "none"`) QEMU runs as the daemon's user.
///
/// A live restore gives QEMU its overlays and the export's socket as this user, and no one else.
public struct QemuProcessOwner: Sendable, Equatable {
    /// The user id.
    public var uid: UInt32
    /// The group id.
    public var gid: UInt32

    /// The owner `uid`:`gid`.
    public init(uid: UInt32, gid: UInt32) {
        self.uid = uid
        self.gid = gid
    }

    /// The owner `capabilities` names for domains of type `domainType` (`kvm`, `qemu`; the first label when none is
    /// of that type); nil when it names none.
    public init?(capabilities: String, domainType: String) {
        let root = (try? XMLDocument(xmlString: capabilities, options: [.nodeLoadExternalEntitiesNever]))?
            .rootElement()
        let models = (root?.elements(forName: "host") ?? []).flatMap { $0.elements(forName: "secmodel") }
        guard
            let dac = models.first(where: {
                $0.elements(forName: "model").first?.stringValue?.trimmingCharacters(in: .whitespaces) == "dac"
            })
        else { return nil }
        let labels = dac.elements(forName: "baselabel")
        let label =
            labels.first { $0.attribute(forName: "type")?.stringValue == domainType } ?? labels.first
        guard let text = label?.stringValue?.trimmingCharacters(in: .whitespaces) else { return nil }
        self.init(label: text)
    }

    /// The owner a running domain's QEMU has, from its live XML: the DAC `<seclabel>`'s `<label>` (`+64055:+994`);
    /// nil when it shows none (no DAC model, or the domain does not run). Far cheaper to ask than the capabilities,
    /// which a daemon may take seconds to gather.
    public init?(runningDomainXML xml: String) {
        let root = (try? XMLDocument(xmlString: xml, options: [.nodeLoadExternalEntitiesNever]))?.rootElement()
        guard
            let dac = root?.elements(forName: "seclabel").first(where: {
                $0.attribute(forName: "model")?.stringValue == "dac"
            }),
            let text = dac.elements(forName: "label").first?.stringValue?.trimmingCharacters(in: .whitespaces)
        else { return nil }
        self.init(label: text)
    }

    /// `UID:GID` as libvirt writes a DAC label (`+64055:+994`).
    private init?(label text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let uid = Self.id(parts[0]), let gid = Self.id(parts[1]) else { return nil }
        self.init(uid: uid, gid: gid)
    }

    /// The `type` of the `<domain>` that `xml` describes (`kvm`, `qemu`); `qemu` when it says none.
    public static func domainType(of xml: String) -> String {
        let root = (try? XMLDocument(xmlString: xml, options: [.nodeLoadExternalEntitiesNever]))?.rootElement()
        return root?.attribute(forName: "type")?.stringValue ?? "qemu"
    }

    /// `+NUMBER` (libvirt writes ids so), or a bare number.
    private static func id(_ text: Substring) -> UInt32? {
        UInt32(text.hasPrefix("+") ? text.dropFirst() : text)
    }
}
