/// One object in a listing.
public struct S3ListedObject: Sendable, Hashable {
    /// The full key.
    public var key: String
    /// The object's length in bytes.
    public var size: UInt64

    /// A listed object from its parts.
    public init(key: String, size: UInt64) {
        self.key = key
        self.size = size
    }
}

/// One page of ListObjectsV2.
public struct S3ListPage: Sendable, Hashable {
    /// The objects on this page, in key order.
    public var objects: [S3ListedObject]
    /// With a delimiter: the key prefixes up to and including the delimiter that stand for several keys.
    public var commonPrefixes: [String]
    /// Pass it back for the next page; nil on the last page.
    public var nextContinuationToken: String?

    /// A page from its parts.
    public init(objects: [S3ListedObject], commonPrefixes: [String], nextContinuationToken: String?) {
        self.objects = objects
        self.commonPrefixes = commonPrefixes
        self.nextContinuationToken = nextContinuationToken
    }
}
