import Foundation
import UntrustedText

/// The S3 XML documents this client reads and writes. Every number from the store is validated: a size is a
/// decimal of at most `Int64.max`, never trapped on.
enum S3Responses {
    /// A ListObjectsV2 result.
    static func listPage(_ data: Data, context: String) throws(S3Error) -> S3ListPage {
        let root = try document(data, root: "ListBucketResult", context: context)
        let decode = root.text("EncodingType") == "url"
        var objects: [S3ListedObject] = []
        for contents in root.children("Contents") {
            guard let key = contents.text("Key") else { throw invalid("an entry without Key", context) }
            let size = try self.size(contents.text("Size"), context: context)
            objects.append(S3ListedObject(key: try decoded(key, decode, context), size: size))
        }
        var prefixes: [String] = []
        for common in root.children("CommonPrefixes") {
            guard let prefix = common.text("Prefix") else { throw invalid("CommonPrefixes without Prefix", context) }
            prefixes.append(try decoded(prefix, decode, context))
        }
        var token: String?
        if root.text("IsTruncated") == "true" {
            guard let next = root.text("NextContinuationToken"), !next.isEmpty else {
                throw invalid("a truncated listing without NextContinuationToken", context)
            }
            token = next
        }
        return S3ListPage(objects: objects, commonPrefixes: prefixes, nextContinuationToken: token)
    }

    /// The upload id of an InitiateMultipartUploadResult.
    static func uploadID(_ data: Data, context: String) throws(S3Error) -> String {
        let root = try document(data, root: "InitiateMultipartUploadResult", context: context)
        guard let id = root.text("UploadId"), !id.isEmpty else { throw invalid("no UploadId", context) }
        return id
    }

    /// One page of ListMultipartUploads, and where the next page starts (nil on the last).
    static func uploadsPage(_ data: Data, context: String) throws(S3Error) -> (
        uploads: [S3MultipartUpload], next: (keyMarker: String, uploadIDMarker: String)?
    ) {
        let root = try document(data, root: "ListMultipartUploadsResult", context: context)
        let decode = root.text("EncodingType") == "url"
        var uploads: [S3MultipartUpload] = []
        for upload in root.children("Upload") {
            guard let key = upload.text("Key"), let id = upload.text("UploadId"), !id.isEmpty else {
                throw invalid("an Upload without Key or UploadId", context)
            }
            let initiated = upload.text("Initiated").flatMap(Self.date)
            uploads.append(
                S3MultipartUpload(key: try decoded(key, decode, context), uploadID: id, initiated: initiated))
        }
        guard root.text("IsTruncated") == "true" else { return (uploads, nil) }
        guard let keyMarker = root.text("NextKeyMarker"), !keyMarker.isEmpty else {
            throw invalid("a truncated upload listing without NextKeyMarker", context)
        }
        return (uploads, (try decoded(keyMarker, decode, context), root.text("NextUploadIdMarker") ?? ""))
    }

    /// The `Code` and `Message` of an S3 error document; nil for a body that is not one (HEAD has none).
    static func error(_ data: Data) -> (code: String, message: String)? {
        guard !data.isEmpty, let root = S3XMLElement.parse(data), root.name == "Error" else { return nil }
        return (root.text("Code") ?? "", root.text("Message") ?? "")
    }

    /// The body of CompleteMultipartUpload: the parts in ascending order, etags escaped.
    static func completeBody(_ parts: [S3CompletedPart]) -> String {
        var body = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        for part in parts.sorted(by: { $0.partNumber < $1.partNumber }) {
            body += "<Part><PartNumber>\(part.partNumber)</PartNumber>"
            body += "<ETag>\(XMLEscaping.escape(part.etag))</ETag></Part>"
        }
        return body + "</CompleteMultipartUpload>"
    }

    /// A size in bytes as the store wrote it: decimal digits only, at most `Int64.max`.
    static func size(_ text: String?, context: String) throws(S3Error) -> UInt64 {
        guard let text, !text.isEmpty, text.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
            let value = UInt64(text), value <= UInt64(Int64.max)
        else {
            throw invalid("size \(UntrustedText.quoted(text ?? "")) is not a number up to 2^63-1", context)
        }
        return value
    }

    private static func document(_ data: Data, root name: String, context: String) throws(S3Error) -> S3XMLElement {
        guard let root = S3XMLElement.parse(data) else { throw invalid("a body that is not XML", context) }
        guard root.name == name else {
            throw invalid("a \(UntrustedText.quoted(root.name)) document instead of \(name)", context)
        }
        return root
    }

    private static func decoded(_ text: String, _ decode: Bool, _ context: String) throws(S3Error) -> String {
        guard decode else { return text }
        // encoding-type=url writes a space as `+` in some stores; S3 itself writes %20. A literal `+` is %2B.
        guard let value = text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding else {
            throw invalid("a key that is not valid percent-encoding: \(UntrustedText.quoted(text))", context)
        }
        return value
    }

    private static func date(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }

    private static func invalid(_ what: String, _ context: String) -> S3Error {
        S3Error(.invalidResponse, "\(context): the store answered with \(what): check AWS_ENDPOINT_URL")
    }
}
