extension String {
    /// The string with its control characters (C0, DEL and C1) written as `\u{…}`, so that printing a name read
    /// from an image or a repository cannot move the cursor, recolour or retitle a terminal.
    package var escapingControlCharacters: String {
        var escaped = ""
        for scalar in unicodeScalars {
            if scalar.value < 0x20 || (0x7f..<0xa0).contains(scalar.value) {
                escaped += "\\u{" + String(scalar.value, radix: 16) + "}"
            } else {
                escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }
}
