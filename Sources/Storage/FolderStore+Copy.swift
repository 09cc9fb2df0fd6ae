/// A folder stages a group and swaps it in with one rename (``publish(_:as:replacing:)``): it never replaces a
/// group's objects one by one.
extension FolderStore {
    public func copy(_ source: ObjectKey, replacing target: ObjectKey) throws(StoreError) {
        throw StoreError(
            .unsupported,
            "\(location(of: target)) is not replaced by a copy: a folder's group is replaced whole, by a rename")
    }
}
