/// Text from outside the program (a repository's names, an image's backing file, libvirt's XML, an argument) made
/// safe to print on one line: the one escaper every target uses, so that a name reads the same in every message.
///
/// What gets escaped is the same everywhere: the C0 controls, DEL, the C1 controls (U+009B starts a terminal control
/// sequence) and the format characters (Unicode's `Cf`: the bidirectional embeddings, overrides, isolates and marks,
/// which reorder what follows them, and the invisible ones such as U+200B and U+FEFF). Such a string cannot move the
/// cursor, retitle the terminal, fake a line of output or look like another name. Printable characters, Unicode
/// included, stay.
package enum UntrustedText {
    /// How an escaped character is written.
    package enum Notation: Sendable {
        /// Swift's string literal escapes, `\u{1b}`, `\u{202e}`: in messages of the library targets.
        case swift
        /// `\x1b` below U+0100, `\u{202e}` above: what the command line prints.
        case terminal
    }

    /// Whether `scalar` is written as an escape.
    package static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: true  // C0, DEL, C1
        default: scalar.properties.generalCategory == .format
        }
    }

    /// `text` with every character ``needsEscape(_:)`` holds for written in `notation`.
    package static func escaped(_ text: String, as notation: Notation = .swift) -> String {
        replacing(in: text, where: needsEscape) { scalar in
            switch notation {
            case .swift: "\\u{" + String(scalar.value, radix: 16) + "}"
            case .terminal:
                scalar.value < 0x100
                    ? "\\x" + hex(scalar.value, digits: 2) : "\\u{" + hex(scalar.value, digits: 4) + "}"
            }
        }
    }

    /// `text` in double quotes for a one-line message: escaped in Swift notation, its quotes and backslashes too, and
    /// cut after 80 characters (Unicode scalars), so that no name can make a message endless.
    package static func quoted(_ text: String) -> String {
        let limit = 80
        let scalars = text.unicodeScalars
        let kept = String(String.UnicodeScalarView(scalars.prefix(limit)))
        let quotedOrEscaped = { (scalar: Unicode.Scalar) in scalar == "\"" || scalar == "\\" || needsEscape(scalar) }
        let body = replacing(in: kept, where: quotedOrEscaped) { scalar in
            scalar == "\"" || scalar == "\\" ? "\\" + String(scalar) : "\\u{" + String(scalar.value, radix: 16) + "}"
        }
        return "\"" + body + (scalars.count > limit ? "..." : "") + "\""
    }

    /// `text` with each scalar for which `applies` holds replaced by `replacement(scalar)`.
    package static func replacing(
        in text: String, where applies: (Unicode.Scalar) -> Bool, with replacement: (Unicode.Scalar) -> String
    ) -> String {
        guard text.unicodeScalars.contains(where: applies) else { return text }
        var result = ""
        for scalar in text.unicodeScalars {
            if applies(scalar) { result += replacement(scalar) } else { result.unicodeScalars.append(scalar) }
        }
        return result
    }

    /// `value` in lowercase hex, with leading zeros up to `digits`.
    package static func hex(_ value: UInt32, digits: Int) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }
}
