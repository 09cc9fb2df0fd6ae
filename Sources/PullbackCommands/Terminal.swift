import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Where the command line writes, and whether that is a terminal.
enum Terminal {
    enum Stream {
        case standardOutput, standardError
        var descriptor: Int32 { self == .standardOutput ? STDOUT_FILENO : STDERR_FILENO }
    }

    static func isTerminal(_ stream: Stream) -> Bool { isatty(stream.descriptor) == 1 }

    /// The columns of the terminal `stream` is, asked anew at each call so that a resized window is followed:
    /// the window size of the terminal, else `COLUMNS`, else 80.
    static func columns(of stream: Stream, environment: [String: String] = ProcessInfo.processInfo.environment) -> Int {
        var size = winsize()
        if ioctl(stream.descriptor, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        if let text = environment["COLUMNS"], let columns = Int(text), columns > 0 { return columns }
        return 80
    }

    /// Prints the one-line error every failing command ends with. The message is escaped: it may quote names
    /// from a repository, and a newline in one must not make it two lines.
    static func printError(_ message: String) {
        writeError("pullback: error: \(escaped(message))\n")
    }

    /// `text` with every control character written as an escape, so that a string from a repository (a domain
    /// name, a point id, a reason) cannot move the cursor, retitle the terminal or fake a line of output: C0
    /// controls, DEL and C1 controls become `\x1b`-style escapes, and the bidirectional overrides and isolates,
    /// which reorder what follows them, `\u{202e}`-style ones. Printable characters, Unicode included, stay.
    static func escaped(_ text: String) -> String {
        replacing(in: text, where: needsEscape) { scalar in
            scalar.value < 0x100 ? "\\x" + hex(scalar.value, digits: 2) : "\\u{" + hex(scalar.value, digits: 4) + "}"
        }
    }

    /// `text` with each scalar for which `applies` holds replaced by `replacement(scalar)`.
    static func replacing(
        in text: String, where applies: (Unicode.Scalar) -> Bool, with replacement: (Unicode.Scalar) -> String
    ) -> String {
        guard text.unicodeScalars.contains(where: applies) else { return text }
        var result = ""
        for scalar in text.unicodeScalars {
            if applies(scalar) { result += replacement(scalar) } else { result.unicodeScalars.append(scalar) }
        }
        return result
    }

    static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: true  // C0, DEL, C1
        case 0x202A...0x202E, 0x2066...0x2069: true  // bidirectional embeddings, overrides and isolates
        default: false
        }
    }

    static func hex(_ value: UInt32, digits: Int) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }

    static func writeError(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}

/// A byte count for people: 1.5 GiB, 512.0 KiB, 17 B.
struct ByteCount: CustomStringConvertible {
    let bytes: UInt64
    init(_ bytes: UInt64) { self.bytes = bytes }

    var description: String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
    }
}

/// JSON summaries: one object on one line.
enum JSONOutput {
    static func line(
        _ value: some Encodable, dates: JSONEncoder.DateEncodingStrategy = .deferredToDate
    ) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = dates
        return escapingControls(String(decoding: try encoder.encode(value), as: UTF8.self))
    }

    /// `json` with what the encoder leaves raw inside strings written as `\u` escapes too: it escapes only the C0
    /// controls JSON requires, and DEL, the C1 controls (U+009B starts a terminal control sequence) and the
    /// bidirectional overrides would reach a terminal that shows the output. Outside strings JSON text is plain
    /// ASCII, so every such character is inside a string and its escape decodes to the same string.
    static func escapingControls(_ json: String) -> String {
        Terminal.replacing(
            in: json, where: { $0.value >= 0x7F && Terminal.needsEscape($0) },
            with: { "\\u" + Terminal.hex($0.value, digits: 4) })
    }
}
