import NIOCore
import QCOW2

/// A reply built from the export's images, on the thread pool: reading them may wait for the disk. The buffer is
/// allocated at its final size at once.
enum ReplyWork: Equatable, Sendable {
    /// With structured replies, a data chunk per stretch of data and a hole chunk per stretch that reads as zeros;
    /// otherwise a simple reply and the bytes.
    case read(Range<UInt64>, structured: Bool)
    /// A chunk per selected context (``MetaContext/flags(of:)``), each of at most ``ReplyCost/maximumDescriptors``
    /// descriptors from the start of the range (one with `only`).
    case blockStatus(Range<UInt64>, contexts: [MetaContext], only: Bool)

    /// The images could not be read: the request gets `EIO`, the connection goes on.
    struct Failure: Error {}

    func build(from export: ServedExport, cookie: UInt64, allocator: ByteBufferAllocator) throws(Failure) -> ByteBuffer
    {
        do {
            switch self {
            case .read(let range, let structured):
                return try Self.read(export, range: range, structured: structured, cookie: cookie, allocator: allocator)
            case .blockStatus(let range, let contexts, let only):
                let extents = try export.chain.map(range)
                let descriptors = BlockStatusDescriptors(
                    extents: extents, limit: only ? 1 : ReplyCost.maximumDescriptors)
                return descriptors.reply(contexts: contexts, cookie: cookie, allocator: allocator)
            }
        } catch {
            throw Failure()
        }
    }

    private static func read(
        _ export: ServedExport, range: Range<UInt64>, structured: Bool, cookie: UInt64,
        allocator: ByteBufferAllocator
    ) throws -> ByteBuffer {
        guard structured else {
            var reply = allocator.buffer(capacity: 16 + Int(range.count))
            reply.writeSimpleReply(error: 0, cookie: cookie)
            try reply.writeChainBytes(of: export, at: range.lowerBound, count: Int(range.count))
            return reply
        }
        let extents = try export.chain.map(range)
        let size = extents.reduce(0) { $0 + 20 + ($1.kind == .data ? 8 + Int($1.length) : 12) }
        var reply = allocator.buffer(capacity: size)
        for (index, extent) in extents.enumerated() {
            let done = index == extents.count - 1
            if extent.kind == .data {
                reply.writeChunkHeader(.offsetData, done: done, cookie: cookie, length: 8 + Int(extent.length))
                reply.writeInteger(extent.offset)
                try reply.writeChainBytes(of: export, at: extent.offset, count: Int(extent.length))
            } else {
                reply.writeChunkHeader(.offsetHole, done: done, cookie: cookie, length: 12)
                reply.writeInteger(extent.offset)
                reply.writeInteger(UInt32(extent.length))
            }
        }
        return reply
    }
}
