import Foundation

/// Rules for a point's saved `domain.xml`, which comes from a repository and so is untrusted input.
enum SavedDomainXML {
    /// Whether `xml` declares a document type. libvirt never writes one; one in a repository could declare entities
    /// that the XML parser would fill in from the host's files (`<!ENTITY x SYSTEM "file:///etc/shadow">`), so such
    /// a file is never parsed.
    static func declaresDocumentType(_ xml: String) -> Bool {
        xml.range(of: "<!DOCTYPE", options: .caseInsensitive) != nil
    }
}
