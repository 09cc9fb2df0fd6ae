import NIOCore
import QCOW2

/// The extents of a block status request, as each meta context describes them: neighbours with the same flags
/// joined, at most `limit` descriptors per context.
struct BlockStatusDescriptors {
    let extents: [ChainExtent]
    let limit: Int

    /// The reply: a block status chunk per context, the last one marked done.
    func reply(contexts: [MetaContext], cookie: UInt64, allocator: ByteBufferAllocator) -> ByteBuffer {
        let chunks = contexts.map { context in (context.id, descriptors(in: context)) }
        var reply = allocator.buffer(capacity: chunks.reduce(0) { $0 + 24 + $1.1.count * 8 })
        for (index, (id, descriptors)) in chunks.enumerated() {
            reply.writeChunkHeader(
                .blockStatus, done: index == chunks.count - 1, cookie: cookie, length: 4 + descriptors.count * 8)
            reply.writeInteger(id)
            for descriptor in descriptors {
                reply.writeInteger(descriptor.length)
                reply.writeInteger(descriptor.flags)
            }
        }
        return reply
    }

    /// The descriptors of `context`.
    func descriptors(in context: MetaContext) -> [(length: UInt32, flags: UInt32)] {
        var descriptors: [(length: UInt32, flags: UInt32)] = []
        for extent in extents {
            let flags = context.flags(of: extent)
            if let last = descriptors.last, last.flags == flags {
                descriptors[descriptors.count - 1].length += UInt32(extent.length)
            } else if descriptors.count == limit {
                break
            } else {
                descriptors.append((UInt32(extent.length), flags))
            }
        }
        return descriptors
    }
}
