import NBDProtocol

/// A request of the transmission phase, as its header says; a write's payload is not part of it (the server is
/// read-only, and ``RequestDecoder`` throws the payload away).
struct NBDRequest: Equatable {
    var flags: UInt16
    /// The command's number; ``command`` is nil for one the server does not know.
    var type: UInt16
    var cookie: UInt64
    var offset: UInt64
    var length: UInt32

    var command: NBDWire.Command? { NBDWire.Command(rawValue: type) }
}
