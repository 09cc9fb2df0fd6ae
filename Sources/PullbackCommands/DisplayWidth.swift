/// Text measured and cut in terminal columns, not bytes or characters: a CJK character or an emoji takes two
/// columns, a combining mark none, so that a line cut to fit a terminal never wraps.
enum DisplayWidth {
    /// The ellipsis that marks cut text: one column.
    static let ellipsis = "…"

    /// The columns `text` takes on a terminal.
    static func columns(of text: some StringProtocol) -> Int {
        text.reduce(0) { $0 + columns(of: $1) }
    }

    /// The columns one character (a grapheme cluster) takes: its first scalar decides, the marks that follow it
    /// take none.
    static func columns(of character: Character) -> Int {
        guard let first = character.unicodeScalars.first else { return 0 }
        let properties = first.properties
        switch properties.generalCategory {
        case .nonspacingMark, .enclosingMark, .format, .control: return 0
        default: break
        }
        if properties.isEmojiPresentation || isWide(first.value) { return 2 }
        return 1
    }

    /// East Asian wide and fullwidth ranges (Unicode's EastAsianWidth W and F, in blocks).
    private static func isWide(_ value: UInt32) -> Bool {
        switch value {
        case 0x1100...0x115F, 0x231A...0x231B, 0x2E80...0x303E, 0x3041...0x33FF, 0x3400...0x4DBF, 0x4E00...0x9FFF,
            0xA000...0xA4CF, 0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE30...0xFE4F, 0xFF00...0xFF60, 0xFFE0...0xFFE6,
            0x1F300...0x1F64F, 0x1F900...0x1F9FF, 0x20000...0x2FFFD, 0x30000...0x3FFFD:
            true
        default: false
        }
    }

    /// `text` cut to at most `width` columns, ending in an ellipsis when cut; empty when `width` is below 1.
    static func truncated(_ text: String, to width: Int) -> String {
        guard width > 0 else { return "" }
        guard columns(of: text) > width else { return text }
        var result = ""
        var used = 0
        for character in text {
            let taken = columns(of: character)
            if used + taken > width - 1 { break }
            result.append(character)
            used += taken
        }
        return result + ellipsis
    }

    /// `names` joined with commas in at most `width` columns: all of them when they fit, else as many of the first as
    /// fit followed by `+N more`, the first one cut when even it does not; empty when not even `+N more` fits.
    static func list(_ names: [String], in width: Int) -> String {
        let whole = names.joined(separator: ", ")
        if columns(of: whole) <= width { return whole }
        for shown in stride(from: names.count - 1, through: 1, by: -1) {
            let line = names[..<shown].joined(separator: ", ") + ", +\(names.count - shown) more"
            if columns(of: line) <= width { return line }
        }
        let rest = names.count > 1 ? ", +\(names.count - 1) more" : ""
        // A cut name is worth showing when a few of its characters are left.
        let room = width - columns(of: rest)
        if room >= 4 { return truncated(names[0], to: room) + rest }
        let count = "+\(names.count) more"
        return columns(of: count) <= width ? count : ""
    }
}
