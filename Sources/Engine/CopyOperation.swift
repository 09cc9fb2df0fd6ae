import Foundation

/// What to copy where: the request behind `pullback copy`.
public struct CopyRequest: Sendable {
    /// The NBD URI of the source export.
    public var sourceURI: String
    /// The raw file to create or update.
    public var targetPath: String
    /// The dirty bitmap to copy changes from. With an existing target this makes the copy incremental.
    public var bitmap: String?
    /// Connections to open when the server allows several (multi-conn).
    public var connections: Int
    /// Whether a full copy may replace an existing target.
    public var overwrite: Bool
    /// Bytes per read request.
    public var requestSize: Int
    /// Requests in flight per connection.
    public var requestsPerConnection: Int

    /// The default request size: large enough that per-request costs vanish, small enough to keep many
    /// requests in flight within a small memory bound (see scripts/bench).
    public static let defaultRequestSize = 1 << 20
    /// The default number of requests in flight per connection.
    public static let defaultRequestsPerConnection = 8

    public init(
        sourceURI: String, targetPath: String, bitmap: String? = nil, connections: Int = 4, overwrite: Bool = false,
        requestSize: Int = defaultRequestSize, requestsPerConnection: Int = defaultRequestsPerConnection
    ) {
        self.sourceURI = sourceURI
        self.targetPath = targetPath
        self.bitmap = bitmap
        self.connections = connections
        self.overwrite = overwrite
        self.requestSize = requestSize
        self.requestsPerConnection = requestsPerConnection
    }
}

/// What a finished copy did.
public struct CopySummary: Sendable, Codable, Equatable {
    public var mode: CopyMode
    public var exportSize: UInt64
    public var bytesRead: UInt64
    public var bytesWritten: UInt64
    public var zeroBytes: UInt64
    public var extents: Int
    public var seconds: Double
    public var connections: Int

    enum CodingKeys: String, CodingKey {
        case mode
        case exportSize = "export_size"
        case bytesRead = "bytes_read"
        case bytesWritten = "bytes_written"
        case zeroBytes = "zero_bytes"
        case extents, seconds, connections
    }
}

/// Copies an NBD export into a raw file: a full copy into a new file, or an incremental update of the
/// previous copy from a dirty bitmap.
public enum CopyOperation {
    /// Runs `request`. `progress` counts as the copy goes; with `measureTotal`, the source is mapped first
    /// so that `progress.bytesToCopy` is known early. The result is durable when this returns.
    public static func run(
        _ request: CopyRequest, progress: CopyProgress = CopyProgress(), measureTotal: Bool = false
    ) async throws(CopyError) -> CopySummary {
        let started = ContinuousClock.now
        let target = request.targetPath
        let targetExists = FileManager.default.fileExists(atPath: target)
        if targetExists && request.bitmap == nil && !request.overwrite {
            throw CopyError(.targetMismatch, "\(target) exists; pass --overwrite to replace it with a full copy, or --bitmap NAME to update it")
        }
        let mode: CopyMode = targetExists && request.bitmap != nil ? .incremental : .full
        return try await NBDBlockSource.withSource(
            uri: request.sourceURI, bitmap: request.bitmap, connections: request.connections
        ) { source throws(CopyError) in
            let pipeline = CopyPipeline(
                requestSize: request.requestSize,
                requestsInFlight: request.requestsPerConnection * source.connectionCount,
                measureTotal: measureTotal)
            switch mode {
            case .full:
                try await RawFileTarget.withNewFile(at: target, size: source.size, replacing: request.overwrite) {
                    file throws(CopyError) in
                    do throws(CopyError) {
                        try await pipeline.run(from: source, to: file, mode: .full, progress: progress)
                    } catch {
                        throw error.explained(existingTarget: targetExists ? target : nil)
                    }
                }
            case .incremental:
                let update = "incremental update from \(request.sourceURI) bitmap \(request.bitmap ?? "")"
                try await RawFileTarget.withUpdate(of: target, size: source.size, describing: update) {
                    file throws(CopyError) in
                    do throws(CopyError) {
                        try await pipeline.run(from: source, to: file, mode: .incremental, progress: progress)
                    } catch {
                        throw error.explainedForUpdate(of: target)
                    }
                }
            }
            return CopySummary(
                mode: mode, exportSize: source.size, bytesRead: progress.bytesRead,
                bytesWritten: progress.bytesWritten, zeroBytes: progress.zeroBytes, extents: progress.extentCount,
                seconds: Self.seconds(since: started), connections: source.connectionCount)
        }
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }
}

extension CopyError {
    /// A failed full copy leaves nothing behind; the message says so.
    func explained(existingTarget: String?) -> CopyError {
        var error = self
        let unchanged = existingTarget.map { "; \($0) is unchanged" } ?? "; no target was created"
        if code == .interrupted {
            error.message = "interrupted" + unchanged
        } else {
            error.message += unchanged
        }
        return error
    }

    /// A failed incremental update leaves a target that mixes two points in time; the message says so.
    func explainedForUpdate(of target: String) -> CopyError {
        var error = self
        let marked = "\(target) was partly updated and is marked incomplete; make a new full copy with --overwrite"
        error.message = code == .interrupted ? "interrupted; \(marked)" : "\(message); \(marked)"
        return error
    }
}
