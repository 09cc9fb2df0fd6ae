import Foundation
import NIOCore
import NIOHTTP1
import UntrustedText

/// A store's answer that the call handles: its status, headers and body.
struct S3Response {
    var status: Int
    var headers: HTTPHeaders
    var body: ByteBuffer

    /// The `ETag` header; an empty string is an invalid response for calls that need one.
    func etag(_ request: S3Request) throws(S3Error) -> String {
        guard let etag = headers.first(name: "etag"), !etag.isEmpty else {
            throw S3Error(
                .invalidResponse, "\(request.context): the store answered without an ETag: check AWS_ENDPOINT_URL",
                status: status)
        }
        return etag
    }

    /// A ranged GET's answer must be 206 with a `Content-Range` that starts where asked and a body as long as it
    /// says (shorter than asked only at the object's end).
    func checkRange(_ range: Range<UInt64>, _ request: S3Request) throws(S3Error) {
        let invalid = { (what: String) in
            S3Error(
                .invalidResponse,
                "\(request.context): the store answered a ranged GET with \(what): check AWS_ENDPOINT_URL",
                status: status)
        }
        guard status == 206 else { throw invalid("HTTP \(status) instead of 206") }
        // `bytes START-END/TOTAL` (TOTAL may be `*`).
        guard let header = headers.first(name: "content-range"), header.hasPrefix("bytes "),
            let dash = header.firstIndex(of: "-"), let slash = header.firstIndex(of: "/"), dash < slash,
            let start = UInt64(header[header.index(header.startIndex, offsetBy: 6)..<dash]),
            let end = UInt64(header[header.index(after: dash)..<slash]), start <= end, end < UInt64(Int64.max)
        else { throw invalid("no valid Content-Range") }
        guard start == range.lowerBound, end < range.upperBound, UInt64(body.readableBytes) == end - start + 1 else {
            throw invalid("Content-Range \(UntrustedText.quoted(header)) and \(body.readableBytes) bytes")
        }
    }

    /// For calls that take 404 as success (the object or upload is gone already): a 404 that says the bucket is
    /// missing is still an error.
    func failOnMissingBucket(_ request: S3Request) throws(S3Error) {
        guard status == 404, let (code, message) = S3Responses.error(Data(body.readableBytesView)),
            code == "NoSuchBucket"
        else { return }
        throw S3Failure.error(for: request, status: status, code: code, message: message)
    }
}
