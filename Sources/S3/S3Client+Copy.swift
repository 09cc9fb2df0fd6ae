import Foundation
import NIOCore

extension S3Client {
    /// The largest object one CopyObject may copy (S3's limit); larger ones are copied in parts.
    public static let largestSingleCopy: UInt64 = 5 << 30
    /// The size of each part of a copy in parts: 1 GiB, so that 10,000 parts hold S3's largest object (5 TiB).
    public static let copyPartSize: UInt64 = 1 << 30

    /// Replaces the object `key` with a copy of the object `sourceKey` of the same bucket, in the store (no bytes
    /// pass through this machine), and returns the new object's entity tag. Up to ``largestSingleCopy`` bytes
    /// (`sourceSize`) the copy is one CopyObject; above, a multipart upload whose parts are copied (UploadPartCopy),
    /// aborted if it fails. Either way the object `key` is replaced in one step when the copy completes: a reader
    /// sees the old object or the new one, whole. `.noSuchKey` when there is no source.
    @discardableResult
    public func copyObject(bucket: String, sourceKey: String, sourceSize: UInt64, to key: String) throws(S3Error)
        -> String
    {
        guard sourceSize > Self.largestSingleCopy else {
            var request = S3Request(operation: "CopyObject", method: "PUT", bucket: bucket, key: key)
            request.headers = [("x-amz-copy-source", copySource(bucket: bucket, key: sourceKey))]
            let response = try send(request)
            return try Self.copiedETag(response, root: "CopyObjectResult", request: request)
        }
        let uploadID = try createMultipartUpload(bucket: bucket, key: key)
        do throws(S3Error) {
            var parts: [S3CompletedPart] = []
            var offset: UInt64 = 0
            while offset < sourceSize {
                let end = min(sourceSize, offset + Self.copyPartSize)
                let etag = try uploadPartCopy(
                    bucket: bucket, sourceKey: sourceKey, range: offset..<end, to: key, uploadID: uploadID,
                    partNumber: parts.count + 1)
                parts.append(S3CompletedPart(partNumber: parts.count + 1, etag: etag))
                offset = end
            }
            try completeMultipartUpload(bucket: bucket, key: key, uploadID: uploadID, parts: parts)
        } catch {
            try? abortMultipartUpload(bucket: bucket, key: key, uploadID: uploadID)
            throw error
        }
        return try headObject(bucket: bucket, key: key)?.etag ?? ""
    }

    /// Copies the bytes `range` of `sourceKey` as part `partNumber` of the upload `uploadID` of `key`; returns the
    /// part's entity tag.
    private func uploadPartCopy(
        bucket: String, sourceKey: String, range: Range<UInt64>, to key: String, uploadID: String, partNumber: Int
    ) throws(S3Error) -> String {
        var request = S3Request(operation: "UploadPartCopy", method: "PUT", bucket: bucket, key: key)
        guard (1...10000).contains(partNumber) else {
            throw S3Error(.badRequest, "\(request.context): part number \(partNumber) is not in 1...10000")
        }
        request.query = [("partNumber", String(partNumber)), ("uploadId", uploadID)]
        request.headers = [
            ("x-amz-copy-source", copySource(bucket: bucket, key: sourceKey)),
            ("x-amz-copy-source-range", "bytes=\(range.lowerBound)-\(range.upperBound - 1)"),
        ]
        let response = try send(request)
        return try Self.copiedETag(response, root: "CopyPartResult", request: request)
    }

    /// The `x-amz-copy-source` header: `/bucket/key`, the key percent-encoded with its slashes kept.
    private func copySource(bucket: String, key: String) -> String {
        "/" + bucket + "/" + URIEncoding.encodePath(key)
    }

    /// The entity tag in a copy's result document `root` (empty when the store names none). S3 answers 200 before
    /// the copy ends, and may still fail then: the error document comes in the body.
    private static func copiedETag(_ response: S3Response, root name: String, request: S3Request) throws(S3Error)
        -> String
    {
        let data = Data(response.body.readableBytesView)
        if let (code, message) = S3Responses.error(data) {
            throw S3Failure.error(for: request, status: response.status, code: code, message: message)
        }
        guard let root = S3XMLElement.parse(data), root.name == name else {
            throw S3Error(
                .invalidResponse, "\(request.context): the store answered without a \(name) document",
                status: response.status)
        }
        return root.text("ETag") ?? ""
    }
}
