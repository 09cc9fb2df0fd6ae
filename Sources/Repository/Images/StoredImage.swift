import QCOW2
import Storage

/// An image object of a store that is not a local file (a bucket's), read by the qcow2 chain reader with ranged reads:
/// the reader's own caches keep its tables, so a restore costs a request per run of data clusters, many in flight.
final class StoredImage: RandomAccessImage {
    let path: String
    let size: UInt64
    /// Objects have no device and inode: the identity is the object's location, hashed (FNV-1a), which is what a
    /// chain that reached one object twice would repeat.
    let device: UInt64 = 0
    let inode: UInt64
    private let reader: any ObjectReader

    /// Opens `key` of `store`; a missing object is `.io` naming it.
    init(_ key: ObjectKey, of store: any ObjectStore) throws(QCOW2Error) {
        let location = store.location(of: key)
        let opened: (any ObjectReader)?
        do throws(StoreError) { opened = try store.open(key) } catch {
            throw QCOW2Error(.io, "cannot open \(location): \(error.message)", cause: error)
        }
        guard let opened else { throw QCOW2Error(.io, "\(location) does not exist") }
        self.path = location
        self.reader = opened
        self.size = opened.size
        self.inode = location.utf8.reduce(0xcbf2_9ce4_8422_2325 as UInt64) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
    }

    /// Fills `buffer` from `offset`; past the object's end reads zeros, as a file's does.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(QCOW2Error) {
        guard let base = buffer.baseAddress, !buffer.isEmpty else { return }
        var done = 0
        while done < buffer.count, offset < size, UInt64(done) < size - offset {
            let rest = UnsafeMutableRawBufferPointer(rebasing: buffer[done...])
            let count: Int
            do throws(StoreError) { count = try reader.read(into: rest, at: offset + UInt64(done)) } catch {
                throw QCOW2Error(
                    .io, "cannot read \(path) at offset \(offset + UInt64(done)): \(error.message)", cause: error)
            }
            if count == 0 { break }
            done += count
        }
        if done < buffer.count {
            (base + done).initializeMemory(as: UInt8.self, repeating: 0, count: buffer.count - done)
        }
    }

    /// An object has no holes to tell: all of it is data.
    func nextData(from offset: UInt64) -> UInt64? { offset < size ? offset : nil }

    func nextHole(from offset: UInt64) -> UInt64 { size }

    func readsOnce() {}

    func allocatedBytes() throws(QCOW2Error) -> UInt64 { size }
}
