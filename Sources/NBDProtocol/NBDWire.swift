/// The numbers of the NBD protocol's fixed newstyle handshake and transmission phase, as the protocol document
/// (nbd's doc/proto.md) names them: what pullback's server sends and reads, and what `pullback probe` checks servers
/// against.
package enum NBDWire {
    package static let handshakeMagic: UInt64 = 0x4e42_444d_4147_4943  // "NBDMAGIC"
    package static let optionMagic: UInt64 = 0x4948_4156_454f_5054  // "IHAVEOPT"
    package static let optionReplyMagic: UInt64 = 0x3_e889_0455_65a9
    package static let requestMagic: UInt32 = 0x2560_9513
    package static let simpleReplyMagic: UInt32 = 0x6744_6698
    package static let structuredReplyMagic: UInt32 = 0x668e_33ef

    /// Handshake flags (server) and client flags.
    package static let fixedNewstyle: UInt16 = 1 << 0
    package static let noZeroes: UInt16 = 1 << 1

    package enum Option: UInt32 {
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

    package enum Reply: UInt32 {
        case ack = 1
        case server = 2
        case info = 3
        case metaContext = 4
        case unsupported = 0x8000_0001
        case policy = 0x8000_0002
        case invalid = 0x8000_0003
        case platform = 0x8000_0004
        case tlsRequired = 0x8000_0005
        case unknownExport = 0x8000_0006
        case shutdown = 0x8000_0007
        case blockSizeRequired = 0x8000_0008
        case tooBig = 0x8000_0009
    }

    package enum Info: UInt16 {
        case export = 0
        case name = 1
        case description = 2
        case blockSize = 3
    }

    /// Transmission flags.
    package static let hasFlags: UInt16 = 1 << 0
    package static let readOnly: UInt16 = 1 << 1
    package static let sendFlush: UInt16 = 1 << 2
    package static let sendFUA: UInt16 = 1 << 3
    package static let rotational: UInt16 = 1 << 4
    package static let sendTrim: UInt16 = 1 << 5
    package static let sendWriteZeroes: UInt16 = 1 << 6
    package static let sendDF: UInt16 = 1 << 7
    package static let canMultiConn: UInt16 = 1 << 8
    package static let sendResize: UInt16 = 1 << 9
    package static let sendCache: UInt16 = 1 << 10
    package static let sendFastZero: UInt16 = 1 << 11

    package enum Command: UInt16 {
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
    package static let forceUnitAccess: UInt16 = 1 << 0
    package static let noHole: UInt16 = 1 << 1
    package static let doNotFragment: UInt16 = 1 << 2
    package static let requestOne: UInt16 = 1 << 3
    package static let fastZero: UInt16 = 1 << 4

    package enum ChunkType: UInt16 {
        case none = 0
        case offsetData = 1
        case offsetHole = 2
        case blockStatus = 5
        case error = 0x8001
    }

    package static let chunkDone: UInt16 = 1 << 0

    /// Errors, as the protocol numbers them (Linux errno values).
    package enum Error: UInt32 {
        case notPermitted = 1
        case io = 5
        case noMemory = 12
        case invalid = 22
        case noSpace = 28
        case overflow = 75
        case notSupported = 95
        case shutdown = 108
    }

    /// Block status flags of `base:allocation`.
    package static let stateHole: UInt32 = 1 << 0
    package static let stateZero: UInt32 = 1 << 1
    /// The block status flag of a dirty bitmap's set bits.
    package static let stateDirty: UInt32 = 1 << 0

    /// The longest read or block status request served, and the longest option accepted.
    package static let maximumRequest: UInt32 = 32 << 20
    package static let maximumOption: UInt32 = 64 << 10
    /// The longest export name or meta context query (the protocol's limit).
    package static let maximumString: UInt32 = 4096
}
