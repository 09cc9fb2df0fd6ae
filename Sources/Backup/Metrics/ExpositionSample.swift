/// One sample line of Prometheus's text format: `name{label="value",...} value [timestamp]`.
///
/// Label values are unescaped (`\\`, `\"`, `\n`). A comment, a blank line or a line that does not parse is nil:
/// reading an earlier metrics file skips what it cannot read rather than refusing the whole file.
struct ExpositionSample: Equatable {
    var name: String
    var labels: [String: String]
    var value: Double

    init(name: String, labels: [String: String], value: Double) {
        self.name = name
        self.labels = labels
        self.value = value
    }

    init?(line: Substring) {
        var rest = line.drop { $0 == " " || $0 == "\t" }
        guard let first = rest.first, first != "#" else { return nil }
        let name = rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" || $0 == ":" }
        guard !name.isEmpty, name.allSatisfy(\.isASCII) else { return nil }
        rest = rest.dropFirst(name.count)
        var labels: [String: String] = [:]
        if rest.first == "{" {
            guard let parsed = Self.labels(after: &rest) else { return nil }
            labels = parsed
        }
        let fields = rest.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard fields.count == 1 || fields.count == 2, let value = Self.value(fields[0]) else { return nil }
        self.init(name: String(name), labels: labels, value: value)
    }

    /// The labels of `{name="value",...}` at the start of `rest`, which is left after the closing brace.
    private static func labels(after rest: inout Substring) -> [String: String]? {
        var labels: [String: String] = [:]
        rest = rest.dropFirst()
        while true {
            rest = rest.drop { $0 == " " || $0 == "," }
            if rest.first == "}" {
                rest = rest.dropFirst()
                return labels
            }
            let name = rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" }
            rest = rest.dropFirst(name.count)
            guard !name.isEmpty, rest.hasPrefix("=\"") else { return nil }
            rest = rest.dropFirst(2)
            guard let value = quoted(after: &rest) else { return nil }
            labels[String(name)] = value
        }
    }

    /// The label value up to the closing quote, unescaped; `rest` is left after the quote.
    private static func quoted(after rest: inout Substring) -> String? {
        var value = ""
        while let character = rest.popFirst() {
            switch character {
            case "\"": return value
            case "\\":
                switch rest.popFirst() {
                case "n": value.append("\n")
                case "\\": value.append("\\")
                case "\"": value.append("\"")
                default: return nil
                }
            default: value.append(character)
            }
        }
        return nil
    }

    /// A sample value: a decimal or exponent number, or `NaN`, `+Inf`, `-Inf`.
    private static func value(_ text: Substring) -> Double? {
        switch text {
        case "+Inf": .infinity
        case "-Inf": -.infinity
        case "NaN": .nan
        default: Double(text)
        }
    }
}
