/// The protocol's numbers as nbd's doc/proto.md gives them, spelled out here rather than taken from the server, so
/// that a wrong constant in the server fails the tests.
enum NBDNumbers {
    static let handshakeMagic: UInt64 = 0x4e42_444d_4147_4943  // "NBDMAGIC"
    static let optionMagic: UInt64 = 0x4948_4156_454f_5054  // "IHAVEOPT"
    static let optionReplyMagic: UInt64 = 0x0003_e889_0455_65a9
    static let requestMagic: UInt32 = 0x2560_9513
    static let simpleReplyMagic: UInt32 = 0x6744_6698
    static let structuredReplyMagic: UInt32 = 0x668e_33ef

    /// Client flags.
    static let fixedNewstyle: UInt32 = 1
    static let noZeroes: UInt32 = 2

    enum Option {
        static let exportName: UInt32 = 1
        static let abort: UInt32 = 2
        static let list: UInt32 = 3
        static let startTLS: UInt32 = 5
        static let info: UInt32 = 6
        static let go: UInt32 = 7
        static let structuredReply: UInt32 = 8
        static let listMetaContext: UInt32 = 9
        static let setMetaContext: UInt32 = 10
    }

    enum Reply {
        static let ack: UInt32 = 1
        static let server: UInt32 = 2
        static let info: UInt32 = 3
        static let metaContext: UInt32 = 4
        static let unsupported: UInt32 = 0x8000_0001
        static let policy: UInt32 = 0x8000_0002
        static let invalid: UInt32 = 0x8000_0003
        static let tlsRequired: UInt32 = 0x8000_0005
        static let unknownExport: UInt32 = 0x8000_0006
    }

    enum Command {
        static let read: UInt16 = 0
        static let write: UInt16 = 1
        static let disconnect: UInt16 = 2
        static let flush: UInt16 = 3
        static let blockStatus: UInt16 = 7
    }

    enum Chunk {
        static let none: UInt16 = 0
        static let offsetData: UInt16 = 1
        static let offsetHole: UInt16 = 2
        static let blockStatus: UInt16 = 5
        static let error: UInt16 = 0x8001
        static let done: UInt16 = 1
    }

    enum Errno {
        static let notPermitted: UInt32 = 1
        static let invalid: UInt32 = 22
        static let overflow: UInt32 = 75
    }

    /// HAS_FLAGS, READ_ONLY, SEND_FLUSH, CAN_MULTI_CONN, SEND_CACHE.
    static let transmissionFlags: UInt16 = 1 | 2 | 4 | 256 | 1024
}
