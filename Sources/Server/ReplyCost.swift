/// The bytes a reply takes, known before it is built, so that a request is taken only when the budget has room for
/// its reply. Extents are counted at one per 512 bytes (qcow2's smallest cluster) and two more for unaligned ends;
/// the reply's real size corrects the estimate once it is built.
enum ReplyCost {
    /// The most descriptors a block status reply gives per meta context: a client asking about more extents gets
    /// the first ones (the protocol lets a reply cover less than the request), and the reply stays small.
    static let maximumDescriptors = 1 << 16

    /// A read of `length` bytes: the data, and a chunk header per extent with structured replies.
    static func read(length: UInt32, structured: Bool) -> Int {
        guard structured else { return simpleReplyHeader + Int(length) }
        return Int(length) + extents(in: length) * (chunkHeader + 12)
    }

    /// A block status reply for `contexts` meta contexts over `length` bytes (one extent each with `only`).
    static func blockStatus(length: UInt32, contexts: Int, only: Bool) -> Int {
        let descriptors = only ? 1 : min(maximumDescriptors, extents(in: length))
        return contexts * (chunkHeader + 4 + descriptors * 8)
    }

    private static let simpleReplyHeader = 16
    private static let chunkHeader = 20

    private static func extents(in length: UInt32) -> Int { Int(length) / 512 + 2 }
}
