import Foundation
import NIOCore

extension S3Client {
    /// Starts a multipart upload of `key` and returns its upload id.
    public func createMultipartUpload(bucket: String, key: String) throws(S3Error) -> String {
        var request = S3Request(operation: "CreateMultipartUpload", method: "POST", bucket: bucket, key: key)
        request.query = [("uploads", "")]
        let response = try send(request)
        return try S3Responses.uploadID(Data(response.body.readableBytesView), context: request.context)
    }

    /// Uploads part `partNumber` (1...10000) of an upload, in any order, and returns its entity tag.
    public func uploadPart(bucket: String, key: String, uploadID: String, partNumber: Int, body: ByteBuffer)
        throws(S3Error) -> String
    {
        var request = S3Request(operation: "UploadPart", method: "PUT", bucket: bucket, key: key, body: body)
        guard (1...10000).contains(partNumber) else {
            throw S3Error(.badRequest, "\(request.context): part number \(partNumber) is not in 1...10000")
        }
        request.query = [("partNumber", String(partNumber)), ("uploadId", uploadID)]
        return try send(request).etag(request)
    }

    /// Makes the object from the uploaded parts (given in any order; sent in ascending order). With `ifNoneMatch`,
    /// only if no object has the key yet (`.preconditionFailed` otherwise; the upload stays and can be aborted).
    public func completeMultipartUpload(
        bucket: String, key: String, uploadID: String, parts: [S3CompletedPart], ifNoneMatch: Bool = false
    ) throws(S3Error) {
        var request = S3Request(
            operation: "CompleteMultipartUpload", method: "POST", bucket: bucket, key: key,
            body: ByteBuffer(string: S3Responses.completeBody(parts)))
        request.query = [("uploadId", uploadID)]
        request.headers = [("content-type", "application/xml")]
        if ifNoneMatch { request.headers.append(("if-none-match", "*")) }
        do throws(S3Error) {
            let response = try send(request)
            // S3 can answer 200 and still fail: the error document then comes in the body.
            if let (code, message) = S3Responses.error(Data(response.body.readableBytesView)) {
                throw S3Failure.error(for: request, status: response.status, code: code, message: message)
            }
        } catch  where error.attempts > 1 && (error.code == .preconditionFailed || error.code == .noSuchKey) {
            // An earlier attempt may have completed the upload and lost its answer (the retry then finds no upload,
            // or with ifNoneMatch the object): then the object's entity tag is the one these parts make.
            let expected = ConditionalWriteCheck.multipartETag(parts)
            guard let head = try headObject(bucket: bucket, key: key), head.etag == expected else { throw error }
        }
    }

    /// Discards an upload and its parts; an upload that no longer exists is success too.
    public func abortMultipartUpload(bucket: String, key: String, uploadID: String) throws(S3Error) {
        var request = S3Request(
            operation: "AbortMultipartUpload", method: "DELETE", bucket: bucket, key: key, accepted: [404])
        request.query = [("uploadId", uploadID)]
        try send(request).failOnMissingBucket(request)
    }

    /// Every upload started under `prefix` and neither completed nor aborted, all pages.
    public func listMultipartUploads(bucket: String, prefix: String) throws(S3Error) -> [S3MultipartUpload] {
        var uploads: [S3MultipartUpload] = []
        var marker: (keyMarker: String, uploadIDMarker: String)?
        repeat {
            var request = S3Request(operation: "ListMultipartUploads", method: "GET", bucket: bucket, key: nil)
            request.query = [("uploads", ""), ("prefix", prefix), ("encoding-type", "url")]
            if let marker {
                request.query += [("key-marker", marker.keyMarker), ("upload-id-marker", marker.uploadIDMarker)]
            }
            let response = try send(request)
            let page = try S3Responses.uploadsPage(Data(response.body.readableBytesView), context: request.context)
            if let next = page.next, let marker, next == marker {
                throw S3Error(
                    .invalidResponse, "\(request.context): the store listed the same page twice: check AWS_ENDPOINT_URL"
                )
            }
            uploads += page.uploads
            marker = page.next
        } while marker != nil
        return uploads
    }
}
