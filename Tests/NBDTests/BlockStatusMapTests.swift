import Testing

@testable import NBD

// How replies are stitched into a map, with replies written by hand: real servers rarely answer short.
@Suite struct BlockStatusMapTests {
    let allocation = MetaContext.baseAllocation
    let dirty = MetaContext.dirtyBitmap("b0")

    func reply(_ offset: UInt64, _ contexts: [String: [(UInt32, UInt32)]]) -> BlockStatusReply {
        var reply = BlockStatusReply(offset: offset)
        for (name, pairs) in contexts {
            reply.append(context: name, startingAt: offset, pairs.map { BlockStatusEntry(length: $0.0, flags: $0.1) })
        }
        return reply
    }

    @Test func shortRepliesAdvanceToTheShortestContext() throws {
        var map = BlockStatusMap(contexts: [allocation, dirty], range: 0..<1000)
        try map.add(reply(0, [allocation: [(600, 0)], dirty: [(100, 1), (200, 0)]]))
        #expect(map.covered == 300)
        #expect(!map.isComplete)
        try map.add(reply(300, [allocation: [(700, 0)], dirty: [(700, 1)]]))
        #expect(map.isComplete)
        #expect(map.extents[allocation] == [BlockStatusExtent(offset: 0, length: 1000, flags: 0)])
        #expect(
            map.extents[dirty] == [
                BlockStatusExtent(offset: 0, length: 100, flags: 1),
                BlockStatusExtent(offset: 100, length: 200, flags: 0),
                BlockStatusExtent(offset: 300, length: 700, flags: 1),
            ])
    }

    @Test func repliesPastTheEndAreClamped() throws {
        var map = BlockStatusMap(contexts: [allocation], range: 100..<200)
        try map.add(reply(100, [allocation: [(50, 3), (4096, 0)]]))
        #expect(map.isComplete)
        #expect(
            map.extents[allocation] == [
                BlockStatusExtent(offset: 100, length: 50, flags: 3),
                BlockStatusExtent(offset: 150, length: 50, flags: 0),
            ])
    }

    @Test func aReplyMissingAContextIsAProtocolViolation() {
        var map = BlockStatusMap(contexts: [allocation, dirty], range: 0..<100)
        #expect(throws: NBDError.self) { try map.add(reply(0, [allocation: [(100, 0)]])) }
        #expect(throws: NBDError.self) { try map.add(reply(0, [allocation: [(100, 0)], dirty: [(0, 1)]])) }
    }
}
