import Foundation

/// A multipart upload that was started and neither completed nor aborted.
public struct S3MultipartUpload: Sendable, Hashable {
    /// The key the upload would create.
    public var key: String
    /// The id every call about the upload names.
    public var uploadID: String
    /// When it was started, if the store said so in a form that parses.
    public var initiated: Date?

    /// An upload from its parts.
    public init(key: String, uploadID: String, initiated: Date?) {
        self.key = key
        self.uploadID = uploadID
        self.initiated = initiated
    }
}

/// A part uploaded with `uploadPart`, as `completeMultipartUpload` needs it.
public struct S3CompletedPart: Sendable, Hashable {
    /// 1...10000.
    public var partNumber: Int
    /// The entity tag `uploadPart` returned.
    public var etag: String

    /// A completed part from its parts.
    public init(partNumber: Int, etag: String) {
        self.partNumber = partNumber
        self.etag = etag
    }
}
