import NIOCore
import Testing

@testable import Server

/// Requests whose replies do not fit in the server's reply budget wait, in order, without being lost or answered
/// twice, and go on once other connections' replies give the bytes back.
@Suite struct ReplyBudgetWaitTests {
    let exports: TestExports

    init() throws {
        exports = try TestExports()
    }

    @Test("reads wait while the server's budget is taken, then are answered in order")
    func waitForServerBudget() throws {
        let limits = ServerLimits(handshakeTimeout: nil, idleTimeout: nil, replyStallTimeout: nil)
        let budget = ReplyBudget(bytes: limits.serverBudget)
        let connection = try EmbeddedNBDConnection.transmitting(
            [try exports.written("disk", size: 4096)], export: "disk", budget: budget)
        // Other connections' replies hold every byte.
        budget.overdraw(limits.serverBudget)
        let read = { (cookie: UInt64) in
            ClientMessages.request(NBDNumbers.Command.read, cookie: cookie, offset: cookie * 8, length: 8)
        }
        try connection.send(read(1) + read(2))
        #expect(try connection.received().readableBytes == 0)
        // Bytes given back but fewer than a reply's estimate: still waiting.
        budget.give(8)
        connection.channel.embeddedEventLoop.run()
        #expect(try connection.received().readableBytes == 0)
        budget.give(limits.serverBudget - 8)
        connection.channel.embeddedEventLoop.run()
        #expect(
            try connection.received()
                == RequestFramingTests.readReply(cookie: 1, offset: 8, length: 8)
                + RequestFramingTests.readReply(cookie: 2, offset: 16, length: 8))
        try connection.send(read(3))
        #expect(try connection.received() == RequestFramingTests.readReply(cookie: 3, offset: 24, length: 8))
    }
}
