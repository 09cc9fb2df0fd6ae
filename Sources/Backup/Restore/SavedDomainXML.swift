import Foundation
import UntrustedText

/// Rules for a point's saved `domain.xml`, which comes from a repository and so is untrusted input: it is parsed only
/// when it looks like what libvirt writes.
///
/// The XML parser under Foundation fills in entities a document declares, from the host's files or the network
/// (`<!ENTITY x SYSTEM "file:///etc/shadow">`), follows the encoding a document declares (so that `<!DOCTYPE` can be
/// spelled in UTF-7 or UTF-16 and pass a plain text search), and prints lines of a malformed document to stderr as
/// they are. libvirt writes none of a document type, an encoding other than UTF-8, or control characters.
enum SavedDomainXML {
    /// Why `xml` is not parsed, or nil when it may be.
    static func refusal(of xml: String) -> String? {
        for scalar in xml.unicodeScalars {
            switch scalar.value {
            case 0x09, 0x0A, 0x0D: continue
            case 0..<0x20, 0x7F...0x9F: return "it holds control characters"
            case 0xFEFF: return "it holds a byte order mark"
            default: continue
            }
        }
        if xml.range(of: "<!DOCTYPE", options: .caseInsensitive) != nil
            || xml.range(of: "<!ENTITY", options: .caseInsensitive) != nil
        {
            return "it declares a document type (<!DOCTYPE>)"
        }
        if let encoding = declaredEncoding(of: xml), !["utf-8", "utf8"].contains(encoding.lowercased()) {
            return "it declares the encoding \(UntrustedText.escaped(encoding)), not UTF-8"
        }
        return nil
    }

    /// The encoding the XML declaration at the start of `xml` names, if it names one.
    private static func declaredEncoding(of xml: String) -> String? {
        let start = xml.drop { $0.isWhitespace }
        guard start.hasPrefix("<?xml"), let end = start.range(of: "?>") else { return nil }
        let declaration = start[..<end.lowerBound]
        guard let key = declaration.range(of: "encoding", options: .caseInsensitive) else { return nil }
        let rest = declaration[key.upperBound...].drop { $0.isWhitespace || $0 == "=" }
        guard let quote = rest.first, quote == "\"" || quote == "'" else { return String(rest) }
        return String(rest.dropFirst().prefix { $0 != quote })
    }
}
