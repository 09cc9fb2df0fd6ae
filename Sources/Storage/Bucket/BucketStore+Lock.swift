import NIOCore
import S3

extension BucketStore {
    /// How many times a lock that changes hands while it is taken is tried again.
    private static let lockAttempts = 3

    public func acquireLock(_ key: ObjectKey, owner: String, expiry: Duration) throws(StoreError) -> any ObjectLock {
        let object = object(key)
        let token = (0..<2).map { _ in String(UInt64.random(in: .min ... .max), radix: 16) }.joined()
        let record = BucketLockRecord(owner: owner, token: token, expiry: expiry)
        for _ in 0..<Self.lockAttempts {
            if let etag = try Self.put(record, at: object, ifMatch: nil) {
                let lease = BucketLockLease(object: object, record: record, etag: etag, expiry: expiry)
                return BucketLock(key: key, owner: owner, lease: lease)
            }
            guard let (holder, etag) = try BucketLockLease.holder(of: object) else { continue }  // released meanwhile
            guard let holder else {
                throw Self.locked(
                    object, owner: nil,
                    "holds something that is not a Pullback lock; delete it if no run uses the repository")
            }
            guard holder.isExpired || holder.holderIsGone else { throw Self.locked(object, owner: holder.owner, "") }
            // Its holder stopped refreshing it (killed, or cut off) or is gone from this host: taken over only if
            // nobody changed it since it was read. S3 and SeaweedFS (4.48, measured) refuse a PutObject whose If-Match names an older entity tag.
            guard let taken = try Self.put(record, at: object, ifMatch: etag) else { continue }
            let lease = BucketLockLease(object: object, record: record, etag: taken, expiry: expiry)
            return BucketLock(key: key, owner: owner, lease: lease)
        }
        throw Self.locked(object, owner: nil, "changed hands \(Self.lockAttempts) times while it was taken; try again")
    }

    /// Writes `record` as the lock object: only when there is none (`ifMatch` nil) or when it is still the one with
    /// the entity tag `ifMatch`. Returns the new entity tag, or nil when the condition did not hold.
    private static func put(
        _ record: BucketLockRecord, at object: BucketObject, ifMatch: String?
    ) throws(StoreError) -> String? {
        do throws(S3Error) {
            return try object.client.putObject(
                bucket: object.bucket, key: object.name, body: ByteBuffer(bytes: record.encoded()),
                ifNoneMatch: ifMatch == nil, ifMatch: ifMatch)
        } catch  where error.code == .preconditionFailed {
            return nil
        } catch {
            throw StoreError(error)
        }
    }

    /// The lock `object` is held, by `owner` when known.
    private static func locked(_ object: BucketObject, owner: String?, _ detail: String) -> StoreError {
        let holder = owner.map { "is held by " + StoreError.quoted($0) } ?? "is held"
        var error = StoreError(.locked, "\(object.location) \(holder)" + (detail.isEmpty ? "" : "; " + detail))
        error.lockOwner = owner
        return error
    }
}
