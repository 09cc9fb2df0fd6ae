/// What HEAD says about an object.
public struct S3ObjectHead: Sendable, Hashable {
    /// The object's length in bytes.
    public var size: UInt64
    /// The entity tag as the store sent it, quotes included (what `If-Match` wants back).
    public var etag: String

    /// A head from its parts.
    public init(size: UInt64, etag: String) {
        self.size = size
        self.etag = etag
    }
}
