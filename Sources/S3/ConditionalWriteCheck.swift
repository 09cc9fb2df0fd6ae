import Crypto
import Foundation
import NIOCore

/// The entity tags S3 gives an object it wrote, so that a write whose answer was lost can be recognised: a single
/// PUT's is the MD5 of the body, a multipart upload's the MD5 of its parts' MD5s followed by `-` and the part count.
/// MD5 serves here only as S3's name for the content, not for integrity.
enum ConditionalWriteCheck {
    /// `"<md5 of body>"`.
    static func singlePartETag(_ body: ByteBuffer) -> String {
        let digest = body.withUnsafeReadableBytes { Insecure.MD5.hash(data: $0) }
        return "\"" + digest.lowercaseHex + "\""
    }

    /// `"<md5 of the parts' md5s>-<count>"`, parts in ascending order; nil when an etag is not 32 hex digits.
    static func multipartETag(_ parts: [S3CompletedPart]) -> String? {
        var digests = [UInt8]()
        for part in parts.sorted(by: { $0.partNumber < $1.partNumber }) {
            let hexDigits = Array(part.etag.utf8.filter { $0 != UInt8(ascii: "\"") })
            guard hexDigits.count == 32 else { return nil }
            for index in stride(from: 0, to: 32, by: 2) {
                guard let byte = UInt8(String(decoding: hexDigits[index..<index + 2], as: UTF8.self), radix: 16)
                else { return nil }
                digests.append(byte)
            }
        }
        return "\"" + Insecure.MD5.hash(data: digests).lowercaseHex + "-\(parts.count)\""
    }
}
