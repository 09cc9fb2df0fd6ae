import Foundation
import UntrustedText

#if canImport(FoundationXML)
    import FoundationXML
#endif

extension RestoredDomain {
    /// The folders a saved `<loader>` or NVRAM template may name: where firmware packages install (`/usr/share/OVMF`,
    /// `/usr/share/qemu`, `/usr/share/AAVMF`). A repository's XML naming any other file would have QEMU map it into
    /// the guest's memory.
    static let firmwareFolder = "/usr/share/"

    /// Whether `path` is a file in ``firmwareFolder``, with no `.` or `..` component to climb out of it.
    static func isFirmware(_ path: String) -> Bool {
        path.hasPrefix(firmwareFolder)
            && !path.split(separator: "/", omittingEmptySubsequences: false).contains { $0 == "." || $0 == ".." }
    }

    /// Rewrites the firmware of `os` for the new domain: a `<loader>` outside the firmware folders is left out (with
    /// its NVRAM); the `<nvram>` names `nvram` (the restored variable store), or nothing when nil, so that libvirt
    /// makes the new domain a store of its own from the template, never sharing the original's.
    static func rewriteFirmware(_ os: XMLElement, nvram: String?, dropped: inout DroppedKinds) {
        var loaderDropped = false
        for loader in os.elements(forName: "loader") {
            let path = (loader.stringValue ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            if !path.isEmpty, !isFirmware(path) {
                dropped.add("<loader> \(UntrustedText.escaped(path))")
                loader.detach()
                loaderDropped = true
            }
        }
        for element in os.elements(forName: "nvram") {
            if loaderDropped {
                element.detach()
                continue
            }
            if let template = element.attribute(forName: "template")?.stringValue, !isFirmware(template) {
                dropped.add("<nvram> template \(UntrustedText.escaped(template))")
                element.removeAttribute(forName: "template")
            }
            element.removeAttribute(forName: "type")
            element.setChildren(nil)
            if let nvram { element.stringValue = nvram }
        }
    }

    /// Leaves out of `devices` a TPM passed through from the host (the host's own TPM must not be handed to a copy);
    /// an emulated TPM stays, its state in the new domain's own folder (`RestoredState`).
    static func rewriteTPMs(_ devices: XMLElement, dropped: inout DroppedKinds) {
        for tpm in devices.elements(forName: "tpm") {
            let backend = tpm.elements(forName: "backend").first
            guard backend?.attribute(forName: "type")?.stringValue == "emulator" else {
                dropped.add("<tpm> of the host")
                tpm.detach()
                continue
            }
            for source in backend?.elements(forName: "source") ?? [] { source.detach() }
        }
    }
}
