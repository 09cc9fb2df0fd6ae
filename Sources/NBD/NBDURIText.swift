/// Percent-encoding and decoding of an NBD URI's parts (RFC 3986, section 2.1), byte by byte over UTF-8.
enum NBDURIText {
    /// Letters, digits, `-`, `.`, `_` and `~`: what never needs encoding.
    static let unreserved: Set<UInt8> = Set(
        Array(UInt8(ascii: "A")...UInt8(ascii: "Z")) + Array(UInt8(ascii: "a")...UInt8(ascii: "z"))
            + Array(UInt8(ascii: "0")...UInt8(ascii: "9")) + [
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"),
            ])
    /// An export name: `/` may stay, so that `nbd://host//disk` reads as the name `/disk` does.
    static let path = unreserved.union([UInt8(ascii: "/")])
    /// A query value: `/` may stay, so that paths stay readable; `&`, `=`, `+`, `?`, `#` and `%` never do.
    static let queryValue = unreserved.union([UInt8(ascii: "/")])

    /// `text` with every byte outside `keeping` written as `%XX`.
    static func encoded(_ text: String, keeping: Set<UInt8>) -> String {
        let digits = Array("0123456789ABCDEF".utf8)
        var bytes: [UInt8] = []
        for byte in text.utf8 {
            if keeping.contains(byte) {
                bytes.append(byte)
            } else {
                bytes += [UInt8(ascii: "%"), digits[Int(byte >> 4)], digits[Int(byte & 0xF)]]
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `text` with each `%XX` replaced by its byte; nil when a `%` is not followed by two hex digits, the bytes
    /// are not UTF-8, or they hold a NUL (which a C string cannot pass to libnbd).
    static func decoded(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var input = Array(text.utf8)[...]
        while let byte = input.popFirst() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard input.count >= 2, let high = hexValue(input.removeFirst()), let low = hexValue(input.removeFirst())
            else { return nil }
            bytes.append(high << 4 | low)
        }
        guard !bytes.contains(0), let decoded = String(validating: bytes, as: UTF8.self) else { return nil }
        return decoded
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// The characters a URI may hold as they are (RFC 3986's unreserved, reserved and `%`), but `#`: NBD URIs have no
    /// fragment, and a `#` meant as part of a name must be written `%23`.
    static func isAllowedRaw(_ character: Character) -> Bool {
        guard let ascii = character.asciiValue, ascii > 0x20, ascii < 0x7F else { return false }
        return !"\"<>\\^`{|}#".utf8.contains(ascii)
    }
}
