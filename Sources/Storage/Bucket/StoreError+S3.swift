import S3

extension StoreError {
    /// A failed S3 call as the store's failure: its one-line message (which names the bucket and key) and the S3
    /// error as the cause, so that a caller can still tell a missing bucket or refused keys apart.
    init(_ error: S3Error) {
        self.init(.io, error.message, cause: error)
    }
}

/// Runs an S3 call and gives its failure as a ``StoreError``.
func bucketStep<T>(_ body: () throws(S3Error) -> T) throws(StoreError) -> T {
    do throws(S3Error) { return try body() } catch { throw StoreError(error) }
}
