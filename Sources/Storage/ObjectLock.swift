/// A lock held in a store (``ObjectStore/acquireLock(_:owner:expiry:)``), until ``release()`` or until it is
/// released itself.
public protocol ObjectLock: AnyObject, Sendable {
    /// The lock's key.
    var key: ObjectKey { get }
    /// The owner it was taken for.
    var owner: String { get }

    /// Gives the lock up; nothing when it was released already.
    func release()
}
