import Crypto
import Foundation

/// AWS Signature Version 4 for one request: the canonical request, the string to sign, the signing key and the
/// `Authorization` header. The caller adds `host`, `x-amz-date` (and for S3 `x-amz-content-sha256` and
/// `x-amz-security-token`) to the headers before signing, so that they are signed.
struct SignatureV4: Sendable {
    /// What is signed: the request as it goes out, with the path not yet encoded.
    struct Request {
        /// `GET`, `PUT`, ...
        var method: String
        /// The decoded path, e.g. `/bucket/a key/ሴ`; each segment is encoded here, `/` kept.
        var path: String
        /// Decoded query names and values, in any order.
        var query: [(name: String, value: String)]
        /// Every header to sign, names in any case.
        var headers: [(name: String, value: String)]
        /// Hex SHA-256 of the body, or `UNSIGNED-PAYLOAD`.
        var payloadHash: String
    }

    /// The hex SHA-256 of an empty body.
    static let emptyPayloadHash = hexSHA256(Data())

    let accessKeyID: String
    let secretAccessKey: String
    let region: String
    let service: String

    /// The canonical request (AWS's six lines) and the `;`-joined lowercase names of the signed headers.
    func canonicalRequest(_ request: Request) -> (text: String, signedHeaders: String) {
        var headers: [String: String] = [:]
        for (name, value) in request.headers {
            let key = name.lowercased()
            let trimmed = Self.collapseSpaces(value)
            headers[key] = headers[key].map { $0 + "," + trimmed } ?? trimmed
        }
        let names = headers.keys.sorted()
        let signedHeaders = names.joined(separator: ";")
        let canonicalHeaders = names.map { "\($0):\(headers[$0] ?? "")\n" }.joined()
        let encoded: [(name: String, value: String)] = request.query.map {
            (URIEncoding.encode($0.name), URIEncoding.encode($0.value))
        }
        let sorted = encoded.sorted { $0.name == $1.name ? $0.value < $1.value : $0.name < $1.name }
        let query = sorted.map { $0.name + "=" + $0.value }.joined(separator: "&")
        let text = [
            request.method, URIEncoding.encodePath(request.path), query, canonicalHeaders, signedHeaders,
            request.payloadHash,
        ].joined(separator: "\n")
        return (text, signedHeaders)
    }

    /// The string to sign for a canonical request made at `timestamp` (`yyyyMMdd'T'HHmmss'Z'`).
    func stringToSign(canonicalRequest: String, timestamp: String) -> String {
        [
            "AWS4-HMAC-SHA256", timestamp, scope(day: String(timestamp.prefix(8))),
            Self.hexSHA256(Data(canonicalRequest.utf8)),
        ].joined(separator: "\n")
    }

    /// The `Authorization` header's value for `request` made at `timestamp`.
    func authorization(_ request: Request, timestamp: String) -> String {
        let (canonical, signedHeaders) = canonicalRequest(request)
        let toSign = stringToSign(canonicalRequest: canonical, timestamp: timestamp)
        let day = String(timestamp.prefix(8))
        let signature = HMAC<SHA256>.authenticationCode(for: Data(toSign.utf8), using: signingKey(day: day))
        return "AWS4-HMAC-SHA256 Credential=\(accessKeyID)/\(scope(day: day)), SignedHeaders=\(signedHeaders), "
            + "Signature=\(signature.lowercaseHex)"
    }

    /// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, day), region), service), "aws4_request")`.
    func signingKey(day: String) -> SymmetricKey {
        var key = SymmetricKey(data: Data(("AWS4" + secretAccessKey).utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key)))
        }
        return key
    }

    /// `yyyyMMdd'T'HHmmss'Z'` in UTC, as `x-amz-date` wants it.
    static func timestamp(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? .current
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        func two(_ value: Int?) -> String { String(format: "%02d", value ?? 0) }
        return String(format: "%04d", parts.year ?? 0) + two(parts.month) + two(parts.day) + "T" + two(parts.hour)
            + two(parts.minute) + two(parts.second) + "Z"
    }

    /// Lower-case hex of the SHA-256 of `data`.
    static func hexSHA256<D: DataProtocol>(_ data: D) -> String { SHA256.hash(data: data).lowercaseHex }

    private func scope(day: String) -> String { "\(day)/\(region)/\(service)/aws4_request" }

    /// Leading and trailing spaces removed, runs of spaces inside made one, as the canonical headers want.
    private static func collapseSpaces(_ value: String) -> String {
        value.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
    }
}
