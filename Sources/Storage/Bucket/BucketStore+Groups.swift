/// A bucket cannot rename: a group is written in place, its commit object last, and withdrawn by deleting that
/// object first (see ``ObjectStore``).
extension BucketStore {
    public var writesGroupsInPlace: Bool { true }

    public func beginGroup(_ group: ObjectKey, stagingAt staging: ObjectKey) throws(StoreError) -> ObjectKey {
        group
    }

    public func publish(_ written: ObjectKey, as group: ObjectKey, replacing: Bool) throws(StoreError) {
        guard !replacing else {
            throw StoreError(
                .unsupported, "\(location(of: group)) cannot be replaced in one step: a bucket cannot swap two groups")
        }
    }

    public func withdraw(_ group: ObjectKey, to staging: ObjectKey, commit: String) throws(StoreError) -> ObjectKey {
        try delete(group.appending(commit))
        return group
    }
}
