import Foundation
import UntrustedText

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

    /// `text` as the command line prints a string from outside (a domain name, a point id, a reason): the one
    /// escaper's terminal notation, `\x1b` and `\u{202e}` (see ``UntrustedText``).
    static func escaped(_ text: String) -> String { UntrustedText.escaped(text, as: .terminal) }

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
        UntrustedText.replacing(
            in: json, where: { $0.value >= 0x7F && UntrustedText.needsEscape($0) },
            // Above U+FFFF (the tag characters) JSON writes the UTF-16 surrogate pair.
            with: { String($0).utf16.map { "\\u" + UntrustedText.hex(UInt32($0), digits: 4) }.joined() })
    }
}
