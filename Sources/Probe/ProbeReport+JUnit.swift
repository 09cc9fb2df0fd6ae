import Foundation
import UntrustedText

/// The report as JUnit XML, which CI dashboards read: one test suite, one test case per check, a failure element for a
/// failed check and a skipped element for a skipped one.
extension ProbeReport {
    public var junitXML: String {
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        xml += "<testsuites>\n"
        xml +=
            "  <testsuite name=\"pullback probe \(Self.escape(uri))\" tests=\"\(checks.count)\" failures=\"\(count(.fail))\" skipped=\"\(count(.skip))\" time=\"\(Self.seconds(seconds))\">\n"
        for check in checks {
            let open =
                "    <testcase classname=\"nbd.\(Self.escape(check.name.split(separator: ".").first.map(String.init) ?? ""))\" name=\"\(Self.escape(check.name))\" time=\"\(Self.seconds(check.seconds))\""
            switch check.result {
            case .pass: xml += open + "/>\n"
            case .fail:
                xml += open + ">\n      <failure message=\"\(Self.escape(check.reason ?? ""))\"/>\n    </testcase>\n"
            case .skip:
                xml += open + ">\n      <skipped message=\"\(Self.escape(check.reason ?? ""))\"/>\n    </testcase>\n"
            }
        }
        xml += "  </testsuite>\n</testsuites>\n"
        return xml
    }

    private static func seconds(_ value: Double) -> String { String(format: "%.3f", value) }

    static func escape(_ text: String) -> String { UntrustedText.xmlEscaped(text) }
}
