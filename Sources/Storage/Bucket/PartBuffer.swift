/// One part of a placed object in memory while it is written: zeros where nothing was written yet, and how many
/// bytes were.
final class PartBuffer: @unchecked Sendable {  // writers fill disjoint ranges; `written` only under the writer's lock
    let bytes: UnsafeMutableRawBufferPointer
    /// How many bytes were written into it, counted under the writer's lock after each copy.
    var written = 0

    init(size: Int) {
        bytes = .allocate(byteCount: size, alignment: 16)
        bytes.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit {
        bytes.deallocate()
    }
}
