import Foundation
import Testing
import UntrustedText

@testable import PullbackCommands

@Suite("One escaper for text from outside, in the terminal's and the messages' notation")
struct UntrustedTextTests {
    static let hostile = "a\u{1b}[2J\u{7f}\u{9b}\u{202e}b\u{200b}c\u{feff}é日"

    @Test("the same characters are escaped in both notations; printable Unicode stays")
    func notations() {
        #expect(
            UntrustedText.escaped(Self.hostile, as: .terminal)
                == "a\\x1b[2J\\x7f\\x9b\\u{202e}b\\u{200b}c\\u{feff}é日")
        #expect(
            UntrustedText.escaped(Self.hostile) == "a\\u{1b}[2J\\u{7f}\\u{9b}\\u{202e}b\\u{200b}c\\u{feff}é日")
        #expect(Terminal.escaped(Self.hostile) == UntrustedText.escaped(Self.hostile, as: .terminal))
        #expect(UntrustedText.escaped("vda, web-1.example") == "vda, web-1.example")
    }

    @Test("quoted: in double quotes, its quotes and backslashes escaped, cut after 80 characters")
    func quoted() {
        #expect(UntrustedText.quoted("a\u{0}\u{1b}\"\n\u{202e}\\") == #""a\u{0}\u{1b}\"\u{a}\u{202e}\\""#)
        let long = String(repeating: "x", count: 81)
        #expect(UntrustedText.quoted(long) == "\"" + String(repeating: "x", count: 80) + "...\"")
        #expect(UntrustedText.quoted(String(repeating: "x", count: 80)).count == 82)
    }

    @Test("JSON output writes every escaped character as \\u, a tag character above U+FFFF as its surrogate pair")
    func json() throws {
        let name = "web\u{9b}\u{200b}\u{E0001}1"
        let line = try JSONOutput.line(["name": name])
        #expect(line == #"{"name":"web\u009b\u200b\udb40\udc011"}"#)
        let decoded = try JSONDecoder().decode([String: String].self, from: Data(line.utf8))
        #expect(decoded["name"] == name)
    }
}
