import S3

/// An ``ObjectStore`` in an S3 bucket, under a prefix: the key `a/b` is the object `<prefix>/a/b`. Objects are
/// written whole (a `PutObject` with `If-None-Match: *`, so an existing object is never replaced) or, past one part,
/// as a multipart upload that nothing lists until it completes. A bucket cannot rename, so a group is written in
/// place and committed by its commit object (see ``ObjectStore``); a lock is an object made only if absent, with an
/// expiry its holder keeps moving ahead.
///
/// Every call blocks on the network (``S3/S3Client`` runs each request to its end, retries included), so callers run
/// them on threads of their own, as they do a folder store's calls.
public struct BucketStore: ObjectStore {
    /// The size of each part of an upload at the least, and of what a writer keeps before it starts one.
    public static let minimumPartSize = 8 << 20
    /// S3's limit on the parts of one upload.
    public static let maximumPartCount = 10_000

    /// The client every call goes through; its owner shuts it down after the store's last use.
    public let client: S3Client
    /// The bucket.
    public let bucket: String
    /// The prefix the store's objects are under, nil for the bucket's root.
    public let prefix: ObjectKey?
    /// How many keys a listing asks for per page: S3's most, smaller in tests of paging.
    var listPageSize = 1000

    /// The store under `prefix` (components separated by `/`; empty for the bucket's root) of `bucket`, through
    /// `client`. A prefix with an empty, `.` or `..` component is ``StoreError/Code/invalidKey``.
    public init(client: S3Client, bucket: String, prefix: String) throws(StoreError) {
        self.client = client
        self.bucket = bucket
        var trimmed = Substring(prefix)
        while trimmed.hasPrefix("/") { trimmed = trimmed.dropFirst() }
        while trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        self.prefix = trimmed.isEmpty ? nil : try ObjectKey(String(trimmed))
    }

    public func location(of key: ObjectKey?) -> String {
        let name = key.map(objectName) ?? prefix?.description ?? ""
        return "s3://" + bucket + (name.isEmpty ? "" : "/" + name)
    }

    public func localPath(of key: ObjectKey) -> String? {
        nil
    }

    /// The S3 key of the object `key`.
    func objectName(_ key: ObjectKey) -> String {
        prefix.map { $0.description + "/" + key.description } ?? key.description
    }

    /// The S3 key prefix of everything under `key` (under the store's root when nil): ends in `/`, or is empty.
    func listPrefix(_ key: ObjectKey?) -> String {
        guard let key else { return prefix.map { $0.description + "/" } ?? "" }
        return objectName(key) + "/"
    }
}
