/// How a qcow2 image's data clusters are stored: as they are, or each compressed on its own (qcow2's compressed
/// clusters, which qemu reads: deflate in any image, zstd in one whose header says so).
public enum ClusterCompression: Sendable, Equatable, CustomStringConvertible {
    case none
    /// Raw deflate with a 4 KiB window, as qemu writes it; levels 1 to 9.
    case deflate(level: Int)
    /// A zstd frame per cluster; levels 1 to 19.
    case zstd(level: Int)

    /// zstd's own default level, 3.
    public static let defaultZstdLevel = 3
    /// zlib's usual default level, 6.
    public static let defaultDeflateLevel = 6

    /// Parses `none`, `deflate[:LEVEL]` or `zstd[:LEVEL]`; nil for anything else or a level out of range.
    public init?(_ text: String) {
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        let level = parts.count == 2 ? Int(parts[1]) : nil
        if parts.count == 2, level == nil { return nil }
        switch parts[0] {
        case "none" where parts.count == 1: self = .none
        case "deflate":
            let level = level ?? Self.defaultDeflateLevel
            guard (1...9).contains(level) else { return nil }
            self = .deflate(level: level)
        case "zstd":
            let level = level ?? Self.defaultZstdLevel
            guard (1...19).contains(level) else { return nil }
            self = .zstd(level: level)
        default: return nil
        }
    }

    /// `none`, `deflate:LEVEL` or `zstd:LEVEL`, as ``init(_:)`` parses it.
    public var description: String {
        switch self {
        case .none: "none"
        case .deflate(let level): "deflate:\(level)"
        case .zstd(let level): "zstd:\(level)"
        }
    }

    /// The header's compression type: 1 for zstd, 0 (zlib's deflate) otherwise.
    var headerType: UInt8 {
        if case .zstd = self { 1 } else { 0 }
    }
}
