import NBDProtocol
import NIOCore

/// The data of the options that name an export, read with the protocol's limits; nil for data that breaks them,
/// which the option answers with `NBD_REP_ERR_INVALID`.
enum OptionData {
    /// `NBD_OPT_INFO` and `NBD_OPT_GO`: the export's name, then the information requests (ignored: the server
    /// gives the same information to all).
    static func exportName(_ data: inout ByteBuffer) -> String? {
        guard let name = string(&data), let count = data.readInteger(as: UInt16.self),
            data.readableBytes == Int(count) * 2
        else { return nil }
        return name
    }

    /// `NBD_OPT_LIST_META_CONTEXT` and `NBD_OPT_SET_META_CONTEXT`: the export's name and the queries.
    static func metaContextQueries(_ data: inout ByteBuffer) -> (export: String, queries: [String])? {
        guard let name = string(&data), let count = data.readInteger(as: UInt32.self) else { return nil }
        var queries: [String] = []
        for _ in 0..<count {
            guard let query = string(&data) else { return nil }
            queries.append(query)
        }
        guard data.readableBytes == 0 else { return nil }
        return (name, queries)
    }

    /// A string after its 32-bit length, at most ``NBDWire/maximumString`` bytes of UTF-8.
    private static func string(_ data: inout ByteBuffer) -> String? {
        guard let length = data.readInteger(as: UInt32.self), length <= NBDWire.maximumString else { return nil }
        return data.readNBDString(length: Int(length))
    }
}
