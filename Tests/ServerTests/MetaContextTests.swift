import NIOCore
import Testing

@testable import Server

/// LIST_META_CONTEXT and SET_META_CONTEXT, with valid and invalid contexts, and what block status reports after.
@Suite struct MetaContextTests {
    let exports: TestExports

    init() throws {
        exports = try TestExports()
    }

    static func context(_ option: UInt32, id: UInt32, _ name: String) -> OptionReply {
        OptionReply(option: option, type: NBDNumbers.Reply.metaContext, payload: Bytes.of(id) + Array(name.utf8))
    }

    static func ack(_ option: UInt32) -> OptionReply { OptionReply(option: option, type: NBDNumbers.Reply.ack) }

    @Test("LIST_META_CONTEXT: every context without a query, those a query ending in a colon begins, exact names")
    func list() throws {
        let disk = try exports.written("disk", size: 4096, bitmap: "backup-vda")
        let connection = try EmbeddedNBDConnection.negotiating([disk])
        let list = NBDNumbers.Option.listMetaContext
        let cases: [([String], [OptionReply])] = [
            (
                [],
                [
                    Self.context(list, id: 1, "base:allocation"), Self.context(list, id: 3, "qemu:allocation-depth"),
                    Self.context(list, id: 2, "qemu:dirty-bitmap:backup-vda"), Self.ack(list),
                ]
            ),
            (
                ["qemu:"],
                [
                    Self.context(list, id: 3, "qemu:allocation-depth"),
                    Self.context(list, id: 2, "qemu:dirty-bitmap:backup-vda"), Self.ack(list),
                ]
            ),
            (
                ["base:allocation", "qemu:dirty-bitmap:other"],
                [Self.context(list, id: 1, "base:allocation"), Self.ack(list)]
            ),
            (["nonsense:", "base:alloc"], [Self.ack(list)]),
        ]
        for (queries, expected) in cases {
            try connection.send(ClientMessages.option(list, ClientMessages.metaContexts("disk", queries)))
            #expect(try connection.optionReplies() == expected, "\(queries)")
        }
    }

    @Test("meta context options on an unknown export get ERR_UNKNOWN; malformed data gets ERR_INVALID")
    func listErrors() throws {
        let connection = try EmbeddedNBDConnection.negotiating([
            try exports.written("disk", size: 4096), try exports.written("other", size: 512),
        ])
        let list = NBDNumbers.Option.listMetaContext
        try connection.send(ClientMessages.option(list, ClientMessages.metaContexts("missing", [])))
        #expect(try connection.optionReplies() == [OptionReply(option: list, type: NBDNumbers.Reply.unknownExport)])
        var countTooLarge = ClientMessages.metaContexts("disk", ["base:allocation"])
        countTooLarge.setInteger(UInt32(2), at: 8)
        for data in [countTooLarge, ClientMessages.metaContexts("disk", []) + ByteBuffer(bytes: [0]), ByteBuffer()] {
            try connection.send(ClientMessages.option(list, data))
            #expect(try connection.optionReplies() == [OptionReply(option: list, type: NBDNumbers.Reply.invalid)])
        }
    }

    @Test("SET_META_CONTEXT is invalid before STRUCTURED_REPLY; after it, selects exact names only")
    func set() throws {
        let connection = try EmbeddedNBDConnection.negotiating([try exports.written("disk", size: 4096)])
        let set = NBDNumbers.Option.setMetaContext
        let data = ClientMessages.metaContexts("disk", ["base:allocation", "qemu:", "nonsense"])
        try connection.send(ClientMessages.option(set, data))
        #expect(try connection.optionReplies() == [OptionReply(option: set, type: NBDNumbers.Reply.invalid)])
        try connection.send(ClientMessages.option(NBDNumbers.Option.structuredReply))
        #expect(try connection.optionReplies() == [Self.ack(8)])
        try connection.send(ClientMessages.option(set, data))
        #expect(try connection.optionReplies() == [Self.context(set, id: 1, "base:allocation"), Self.ack(set)])
        try connection.send(ClientMessages.option(set, ClientMessages.metaContexts("disk", [])))
        #expect(try connection.optionReplies() == [Self.ack(set)])
    }

    @Test("block status reports the contexts selected, one chunk each; with none selected it is invalid")
    func blockStatus() throws {
        let disk = try exports.written("disk", size: 8192)
        let structured = ClientMessages.option(NBDNumbers.Option.structuredReply)
        func select(_ queries: [String]) -> ByteBuffer {
            ClientMessages.option(NBDNumbers.Option.setMetaContext, ClientMessages.metaContexts("disk", queries))
        }
        let status = ClientMessages.request(NBDNumbers.Command.blockStatus, cookie: 3, offset: 0, length: 8192)
        let selected = try EmbeddedNBDConnection.transmitting(
            [disk], export: "disk", options: [structured, select(["qemu:allocation-depth", "base:allocation"])])
        try selected.send(status)
        var reply = try selected.received()
        // Contexts in the export's order, each one data extent: base:allocation flags 0, depth 1 (the top image).
        #expect(
            try [reply.readChunk(), reply.readChunk()] == [
                ReplyChunk(
                    flags: 0, type: NBDNumbers.Chunk.blockStatus, cookie: 3, payload: Bytes.of(UInt32(1), 8192, 0)),
                ReplyChunk(
                    flags: NBDNumbers.Chunk.done, type: NBDNumbers.Chunk.blockStatus, cookie: 3,
                    payload: Bytes.of(UInt32(3), 8192, 1)),
            ])
        #expect(reply.readableBytes == 0)
        let none = try EmbeddedNBDConnection.transmitting([disk], export: "disk", options: [structured, select([])])
        try none.send(status)
        var refused = try none.received()
        #expect(
            try refused.readChunk()
                == ReplyChunk(
                    flags: NBDNumbers.Chunk.done, type: NBDNumbers.Chunk.error, cookie: 3,
                    payload: Bytes.of(NBDNumbers.Errno.invalid) + Bytes.of(UInt16(0))))
    }
}
