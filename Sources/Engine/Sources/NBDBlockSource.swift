import NBD
import Synchronization

/// An NBD export as a block source: extents from `base:allocation` and an optional dirty bitmap, reads
/// spread round-robin over one or more connections.
public final class NBDBlockSource: BlockSource {
    /// The export's URI, for messages.
    public let uri: String
    /// The dirty bitmap whose dirty ranges are reported, if any.
    public let bitmap: String?
    private let connections: [NBDConnection]
    private let nextConnection = Atomic<Int>(0)

    public var size: UInt64 { connections[0].info.size }
    public var maximumReadSize: Int { connections[0].info.maximumRequestSize }
    public var connectionCount: Int { connections.count }

    private init(uri: String, bitmap: String?, connections: [NBDConnection]) {
        self.uri = uri
        self.bitmap = bitmap
        self.connections = connections
    }

    /// Opens `uri`, checks that the server offers `bitmap`, and opens up to `connections` connections when
    /// the server allows several (multi-conn), else one. Runs `body` and closes everything afterwards.
    public static func withSource<Result: Sendable>(
        uri: String, bitmap: String?, connections: Int,
        _ body: (NBDBlockSource) async throws(CopyError) -> Result
    ) async throws(CopyError) -> Result {
        var contexts = [MetaContext.baseAllocation]
        if let bitmap { contexts.append(MetaContext.dirtyBitmap(bitmap)) }
        let first: NBDConnection
        do {
            first = try await NBDConnection.connect(uri: uri, metaContexts: contexts)
        } catch {
            throw CopyError(
                .source, "\(error.message); check that the NBD server is running and the URI is right", cause: error)
        }
        var opened = [first]
        do throws(CopyError) {
            if let bitmap, !first.info.metaContexts.contains(MetaContext.dirtyBitmap(bitmap)) {
                throw CopyError(
                    .unsupported,
                    "the NBD server does not offer dirty bitmap '\(bitmap)' on \(uri); check the name (nbdinfo --list shows what it offers), or copy without --bitmap for a full copy"
                )
            }
            if first.info.canMultiConn {
                for _ in 1..<max(1, connections) {
                    do {
                        opened.append(try await NBDConnection.connect(uri: uri))
                    } catch {
                        throw CopyError(
                            .source, "cannot open another connection to \(uri): \(error.message)", cause: error)
                    }
                }
            }
            let source = NBDBlockSource(uri: uri, bitmap: bitmap, connections: opened)
            let result = try await body(source)
            for connection in opened { await connection.close() }
            return result
        } catch {
            for connection in opened { await connection.close() }
            throw error
        }
    }

    public func extents(in range: Range<UInt64>) async throws(CopyError) -> [SourceExtent] {
        let connection = connections[0]
        let allocationContext = MetaContext.baseAllocation
        let dirtyContext = bitmap.map(MetaContext.dirtyBitmap)
        guard !connection.info.metaContexts.isEmpty else {
            // No block status at all: everything must be read.
            return SourceExtent.merge(allocation: nil, dirty: nil, range: range)
        }
        let map: [String: [BlockStatusExtent]]
        do {
            map = try await connection.blockStatus(in: range)
        } catch {
            throw CopyError(.source, "cannot read block status from \(uri): \(error.message)", cause: error)
        }
        return SourceExtent.merge(
            allocation: map[allocationContext], dirty: dirtyContext.flatMap { map[$0] }, range: range)
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) async throws(CopyError) {
        let index = nextConnection.add(1, ordering: .relaxed).oldValue % connections.count
        do {
            try await connections[index].read(into: buffer, at: offset)
        } catch {
            throw CopyError(.source, "reading \(uri) failed: \(error.message)", cause: error)
        }
    }
}
