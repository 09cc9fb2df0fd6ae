import NBDProtocol

extension NBDWire.Error {
    /// `code` as a failure reason writes it: its errno name and number, `EINVAL (22)`; the number alone for a code
    /// the protocol does not define.
    static func describe(_ code: UInt32) -> String {
        let name: String? =
            switch NBDWire.Error(rawValue: code) {
            case .notPermitted: "EPERM"
            case .io: "EIO"
            case .noMemory: "ENOMEM"
            case .invalid: "EINVAL"
            case .noSpace: "ENOSPC"
            case .overflow: "EOVERFLOW"
            case .notSupported: "ENOTSUP"
            case .shutdown: "ESHUTDOWN"
            case nil: nil
            }
        return name.map { "\($0) (\(code))" } ?? "error \(code)"
    }
}

extension NBDWire.Command {
    /// The command's name, as the protocol document writes it.
    var name: String {
        switch self {
        case .read: "NBD_CMD_READ"
        case .write: "NBD_CMD_WRITE"
        case .disconnect: "NBD_CMD_DISC"
        case .flush: "NBD_CMD_FLUSH"
        case .trim: "NBD_CMD_TRIM"
        case .cache: "NBD_CMD_CACHE"
        case .writeZeroes: "NBD_CMD_WRITE_ZEROES"
        case .blockStatus: "NBD_CMD_BLOCK_STATUS"
        }
    }
}

extension ProbeRequest {
    /// The request in a failure reason: `NBD_CMD_WRITE_ZEROES (NO_HOLE) of 65536 bytes at offset 0`.
    var summary: String {
        let flagNames: [(UInt16, String)] = [
            (NBDWire.forceUnitAccess, "FUA"), (NBDWire.noHole, "NO_HOLE"), (NBDWire.doNotFragment, "DF"),
            (NBDWire.requestOne, "REQ_ONE"), (NBDWire.fastZero, "FAST_ZERO"),
        ]
        let set = flagNames.filter { flags & $0.0 != 0 }.map(\.1)
        let named = command.name + (set.isEmpty ? "" : " (" + set.joined(separator: "|") + ")")
        return length == 0 && offset == 0 ? named : "\(named) of \(length) bytes at offset \(offset)"
    }
}
