/// The numbers of the NBD protocol's fixed newstyle handshake and transmission phase that the server uses, as the
/// protocol document (nbd's doc/proto.md) names them.
enum NBDWire {
    static let handshakeMagic: UInt64 = 0x4e42_444d_4147_4943  // "NBDMAGIC"
    static let optionMagic: UInt64 = 0x4948_4156_454f_5054  // "IHAVEOPT"
    static let optionReplyMagic: UInt64 = 0x3_e889_0455_65a9
    static let requestMagic: UInt32 = 0x2560_9513
    static let simpleReplyMagic: UInt32 = 0x6744_6698
    static let structuredReplyMagic: UInt32 = 0x668e_33ef

    /// Handshake flags (server) and client flags.
    static let fixedNewstyle: UInt16 = 1 << 0
    static let noZeroes: UInt16 = 1 << 1

    enum Option: UInt32 {
        case exportName = 1
        case abort = 2
        case list = 3
        case startTLS = 5
        case info = 6
        case go = 7
        case structuredReply = 8
        case listMetaContext = 9
        case setMetaContext = 10
    }

    enum Reply: UInt32 {
        case ack = 1
        case server = 2
        case info = 3
        case metaContext = 4
        case unsupported = 0x8000_0001
        case policy = 0x8000_0002
        case invalid = 0x8000_0003
        case tlsRequired = 0x8000_0005
        case unknownExport = 0x8000_0006
        case tooBig = 0x8000_0009
    }

    enum Info: UInt16 {
        case export = 0
        case name = 1
        case description = 2
        case blockSize = 3
    }

    /// Transmission flags.
    static let hasFlags: UInt16 = 1 << 0
    static let readOnly: UInt16 = 1 << 1
    static let sendFlush: UInt16 = 1 << 2
    static let canMultiConn: UInt16 = 1 << 8
    static let sendCache: UInt16 = 1 << 10

    enum Command: UInt16 {
        case read = 0
        case write = 1
        case disconnect = 2
        case flush = 3
        case trim = 4
        case cache = 5
        case writeZeroes = 6
        case blockStatus = 7
    }

    /// Command flags.
    static let requestOne: UInt16 = 1 << 3

    enum ChunkType: UInt16 {
        case none = 0
        case offsetData = 1
        case offsetHole = 2
        case blockStatus = 5
        case error = 0x8001
    }

    static let chunkDone: UInt16 = 1 << 0

    /// Errors, as the protocol numbers them (Linux errno values).
    enum Error: UInt32 {
        case notPermitted = 1
        case io = 5
        case noMemory = 12
        case invalid = 22
        case overflow = 75
        case notSupported = 95
        case shutdown = 108
    }

    /// Block status flags of `base:allocation`.
    static let stateHole: UInt32 = 1 << 0
    static let stateZero: UInt32 = 1 << 1
    /// The block status flag of a dirty bitmap's set bits.
    static let stateDirty: UInt32 = 1 << 0

    /// The longest read or block status request served, and the longest option accepted.
    static let maximumRequest: UInt32 = 32 << 20
    static let maximumOption: UInt32 = 64 << 10
    /// The longest export name or meta context query (the protocol's limit).
    static let maximumString: UInt32 = 4096
}
