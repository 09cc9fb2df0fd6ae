import NIOCore
import UntrustedText

/// One S3 call as the client sends it, before signing: which object, which query, which extra headers, what body.
struct S3Request {
    /// The S3 operation's name for messages, e.g. `PutObject`.
    var operation: String
    /// `GET`, `PUT`, `POST`, `HEAD`, `DELETE`.
    var method: String
    var bucket: String
    /// The object's key; nil for a call on the bucket.
    var key: String?
    /// Decoded query names and values.
    var query: [(name: String, value: String)] = []
    /// Headers to send and sign besides host, date, payload hash and token.
    var headers: [(name: String, value: String)] = []
    var body: ByteBuffer?
    /// Statuses the caller handles itself instead of failing (404 for HEAD of an object that may not exist).
    var accepted: Set<Int> = []
    /// The most response body bytes accepted; more is an invalid response, not memory spent.
    var maxResponseBytes = 16 << 20

    /// `s3://bucket/key` (or `s3://bucket`) for messages, the key escaped.
    var location: String {
        let bucketText = UntrustedText.escaped(bucket)
        guard let key else { return "s3://\(bucketText)" }
        return "s3://\(bucketText)/\(UntrustedText.escaped(key))"
    }

    /// `OPERATION s3://bucket/key`: the start of every message about this call.
    var context: String { "S3 \(operation) \(location)" }
}
