/// Percent-encoding as AWS Signature Version 4 and S3 paths need it: every byte except `A-Z a-z 0-9 - . _ ~` as
/// `%XX` with upper-case hex; `/` kept only where asked (a key's path).
enum URIEncoding {
    /// `text` encoded for a query name or value, or a path segment (`/` encoded too).
    static func encode(_ text: String) -> String { encode(text, keepingSlash: false) }

    /// `path` encoded segment by segment, the `/` between segments kept.
    static func encodePath(_ path: String) -> String { encode(path, keepingSlash: true) }

    private static func encode(_ text: String, keepingSlash: Bool) -> String {
        var encoded = [UInt8]()
        encoded.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            if isUnreserved(byte) || (keepingSlash && byte == UInt8(ascii: "/")) {
                encoded.append(byte)
            } else {
                encoded.append(UInt8(ascii: "%"))
                encoded.append(hexDigits[Int(byte >> 4)])
                encoded.append(hexDigits[Int(byte & 0x0f)])
            }
        }
        return String(decoding: encoded, as: UTF8.self)
    }

    private static let hexDigits = Array("0123456789ABCDEF".utf8)

    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
            UInt8(ascii: "~"):
            true
        default:
            false
        }
    }
}
