import NIOCore
import NIOHTTP1

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
}
