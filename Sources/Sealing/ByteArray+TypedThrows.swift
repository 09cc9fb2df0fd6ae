import Storage

extension Array where Element == UInt8 {
    /// `withUnsafeBytes` for a body that throws only ``Storage/StoreError`` (the standard one's rethrows loses the
    /// type).
    func withBytes<T>(_ body: (UnsafeRawBufferPointer) throws(StoreError) -> T) throws(StoreError) -> T {
        try withUnsafeBytes { bytes in Result { () throws(StoreError) in try body(bytes) } }.get()
    }
}
