import Foundation
import NIOCore
import S3
import Synchronization

/// A lock of a ``BucketStore``: an object made only if absent (`If-None-Match: *`), holding a ``BucketLockRecord``.
/// A bucket does not know when its holder dies, so the record carries an expiry that a thread of the lock's own
/// moves ahead every third of it (each time only if the object is still the one it wrote: `If-Match`); a holder
/// that was killed stops doing so, and once its time is over another owner takes the lock over. The object is
/// deleted at ``release()``.
final class BucketLock: ObjectLock {
    let key: ObjectKey
    let owner: String
    private let lease: BucketLockLease

    init(key: ObjectKey, owner: String, lease: BucketLockLease) {
        self.key = key
        self.owner = owner
        self.lease = lease
        lease.startRefreshing()
    }

    deinit {
        release()
    }

    func release() {
        lease.release()
    }
}

/// The lock object a holder keeps: its record, the entity tag of what it last wrote, and the thread refreshing it.
final class BucketLockLease: Sendable {
    private struct State {
        var record: BucketLockRecord
        /// The entity tag of the object as last written, nil once another owner took it over.
        var etag: String?
        var released = false
    }

    let object: BucketObject
    let expiry: Duration
    private let state: Mutex<State>
    private let wake = DispatchSemaphore(value: 0)
    private let ended = DispatchSemaphore(value: 0)

    init(object: BucketObject, record: BucketLockRecord, etag: String, expiry: Duration) {
        self.object = object
        self.expiry = expiry
        state = Mutex(State(record: record, etag: etag))
    }

    func startRefreshing() {
        let thread = Thread { [self] in refreshUntilReleased() }
        thread.name = "lock-refresh"
        thread.start()
    }

    private func refreshUntilReleased() {
        defer { ended.signal() }
        let interval = max(1, Int(BucketLockRecord.seconds(expiry) * 1000 / 3))
        while wake.wait(timeout: .now() + .milliseconds(interval)) == .timedOut {
            refresh()
        }
    }

    /// Moves the expiry ahead, only if the object is still what this holder wrote. A failed refresh is tried again
    /// at the next one: the lock lasts a whole expiry.
    private func refresh() {
        let (record, etag) = state.withLock { ($0.record.renewed(for: expiry), $0.etag) }
        guard let etag else { return }
        do throws(S3Error) {
            let written = try object.client.putObject(
                bucket: object.bucket, key: object.name, body: ByteBuffer(bytes: record.encoded()), ifMatch: etag)
            state.withLock { state in
                state.record = record
                state.etag = written
            }
        } catch  where error.code == .preconditionFailed {
            state.withLock { $0.etag = nil }  // taken over after this holder's time was over
        } catch {}
    }

    /// Stops refreshing (after a refresh under way) and deletes the object if it is still the one this holder wrote.
    func release() {
        let first = state.withLock { state in
            defer { state.released = true }
            return !state.released
        }
        guard first else { return }
        wake.signal()
        ended.wait()
        // Only the object this holder last wrote: one another owner took over after its time was over stays.
        guard let etag = state.withLock({ $0.etag }) else { return }
        try? object.client.deleteObject(bucket: object.bucket, key: object.name, ifMatch: etag)
    }

    /// The record in the lock object and the object's entity tag; nil when there is no lock object. The record is
    /// nil when the object is not a lock record.
    static func holder(of object: BucketObject) throws(StoreError) -> (record: BucketLockRecord?, etag: String)? {
        guard
            let head = try bucketStep({ () throws(S3Error) in
                try object.client.headObject(bucket: object.bucket, key: object.name)
            })
        else { return nil }
        let body: ByteBuffer
        do throws(S3Error) {
            body = try object.client.getObject(bucket: object.bucket, key: object.name, range: 0..<4096)
        } catch  where error.code == .noSuchKey {
            return nil
        } catch {
            throw StoreError(error)
        }
        return (BucketLockRecord.decoded(Array(body.readableBytesView)), head.etag)
    }
}
