import Storage

/// A store that cannot be used (a bucket without credentials, a location that names none): every call that would
/// reach it fails with the one reason, so the first step of any command says it in one line.
struct UnavailableStore: ObjectStore {
    let location: String
    let error: StoreError

    func location(of key: ObjectKey?) -> String { key.map { location + "/" + $0.description } ?? location }
    func localPath(of key: ObjectKey) -> String? { nil }
    /// It stands for a bucket (an `s3://` location); nothing is ever written through it either way.
    var writesGroupsInPlace: Bool { true }
    func rootState() throws(StoreError) -> StoreRootState { throw error }
    func createRoot() throws(StoreError) { throw error }
    func kind(of key: ObjectKey) throws(StoreError) -> ObjectEntry.Kind? { throw error }
    func open(_ key: ObjectKey) throws(StoreError) -> (any ObjectReader)? { throw error }
    func create(_ key: ObjectKey) throws(StoreError) -> any ObjectWriter { throw error }
    func createPlaced(_ key: ObjectKey, expectedSize: UInt64) throws(StoreError) -> any PlacedObjectWriter {
        throw error
    }
    func list(under prefix: ObjectKey?) throws(StoreError) -> [ObjectEntry] { throw error }
    func delete(_ key: ObjectKey) throws(StoreError) { throw error }
    func deleteTree(_ prefix: ObjectKey) throws(StoreError) { throw error }
    func storedBytes(of key: ObjectKey) -> UInt64 { 0 }
    func copy(_ source: ObjectKey, replacing target: ObjectKey) throws(StoreError) { throw error }
    func beginGroup(_ group: ObjectKey, stagingAt staging: ObjectKey) throws(StoreError) -> ObjectKey { throw error }
    func publish(_ written: ObjectKey, as group: ObjectKey, replacing: Bool) throws(StoreError) { throw error }
    func withdraw(_ group: ObjectKey, to staging: ObjectKey, commit: String) throws(StoreError) -> ObjectKey {
        throw error
    }
    func acquireLock(_ key: ObjectKey, owner: String, expiry: Duration) throws(StoreError) -> any ObjectLock {
        throw error
    }
    func makePrivate(_ prefix: ObjectKey?, depth: Int) -> Int { 0 }
}
