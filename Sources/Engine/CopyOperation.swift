import Foundation

/// The format of a copy's target file.
public enum TargetFormat: String, Sendable, Codable, CaseIterable {
    /// A sparse raw image, updated in place by incremental copies.
    case raw
    /// A qcow2 image: standalone for a full copy, an overlay over the previous point for an incremental one.
    case qcow2
}

/// What to copy where: the request behind `pullback copy`.
public struct CopyRequest: Sendable {
    /// The NBD URI of the source export.
    public var sourceURI: String
    /// The file to create or update.
    public var targetPath: String
    /// The target's format.
    public var format: TargetFormat
    /// For an incremental qcow2 copy: the previous point's image, which becomes the backing file.
    public var backingPath: String?
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
    /// Whether `backingPath`'s chain may hold a block or character device (FIFOs never may).
    public var backingMayBeDevice = false
    /// How reads and block status requests that fail for a passing reason are tried again.
    public var retry = RetryPolicy()
    /// How long requests in flight may go without any reply before the copy fails; nil waits forever.
    public var stallTimeout: Duration? = .seconds(120)

    /// The default request size: large enough that per-request costs vanish, small enough to keep many
    /// requests in flight within a small memory bound (see scripts/bench).
    public static let defaultRequestSize = 1 << 20
    /// The default number of requests in flight per connection: 8 in all over 4 connections. More were not faster
    /// on a libvirt export of a running guest nor from qemu-nbd (scripts/bench, 2 GiB, 2 against 8 per connection:
    /// 1.47 s against 2.00 s, 1.11 against 1.16, 1.51 against 1.34), and they cost 24 MiB more of buffers.
    public static let defaultRequestsPerConnection = 2

    public init(
        sourceURI: String, targetPath: String, format: TargetFormat = .raw, backingPath: String? = nil,
        bitmap: String? = nil, connections: Int = 4, overwrite: Bool = false,
        requestSize: Int = defaultRequestSize, requestsPerConnection: Int = defaultRequestsPerConnection
    ) {
        self.sourceURI = sourceURI
        self.targetPath = targetPath
        self.format = format
        self.backingPath = backingPath
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
    public var format: TargetFormat
    public var exportSize: UInt64
    public var bytesRead: UInt64
    public var bytesWritten: UInt64
    public var zeroBytes: UInt64
    public var extents: Int
    public var seconds: Double
    public var connections: Int
    /// Requests that failed and were tried again.
    public var retries: Int

    enum CodingKeys: String, CodingKey {
        case mode, format
        case exportSize = "export_size"
        case bytesRead = "bytes_read"
        case bytesWritten = "bytes_written"
        case zeroBytes = "zero_bytes"
        case extents, seconds, connections, retries
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
        let mode = try Self.mode(of: request, targetExists: targetExists)
        return try await NBDBlockSource.withSource(
            uri: request.sourceURI, bitmap: request.bitmap, connections: request.connections, retry: request.retry,
            stallTimeout: request.stallTimeout
        ) { source throws(CopyError) in
            let pipeline = CopyPipeline(
                requestSize: request.requestSize,
                requestsInFlight: request.requestsPerConnection * source.connectionCount,
                measureTotal: measureTotal)
            func copy(into file: some BlockTarget) async throws(CopyError) {
                try await pipeline.run(from: source, to: file, mode: mode, progress: progress)
            }
            switch (request.format, mode) {
            case (.raw, .full):
                try await RawFileTarget.withNewFile(at: target, size: source.size, replacing: request.overwrite) {
                    file throws(CopyError) in
                    do throws(CopyError) { try await copy(into: file) } catch {
                        throw error.explained(existingTarget: targetExists ? target : nil)
                    }
                }
            case (.raw, .incremental):
                let update = "incremental update from \(request.sourceURI) bitmap \(request.bitmap ?? "")"
                try await RawFileTarget.withUpdate(of: target, size: source.size, describing: update) {
                    file throws(CopyError) in
                    do throws(CopyError) { try await copy(into: file) } catch {
                        throw error.explainedForUpdate(of: target)
                    }
                }
            case (.qcow2, _):
                var backing: QCOW2FileTarget.Backing?
                if let path = request.backingPath {
                    backing = try await QCOW2FileTarget.Backing.inspect(
                        path, size: source.size, for: target, allowDevices: request.backingMayBeDevice)
                }
                try await QCOW2FileTarget.withNewImage(
                    at: target, size: source.size, backing: backing, replacing: request.overwrite
                ) { file throws(CopyError) in
                    do throws(CopyError) { try await copy(into: file) } catch {
                        throw error.explained(existingTarget: targetExists ? target : nil)
                    }
                }
            }
            return CopySummary(
                mode: mode, format: request.format, exportSize: source.size, bytesRead: progress.bytesRead,
                bytesWritten: progress.bytesWritten, zeroBytes: progress.zeroBytes, extents: progress.extentCount,
                seconds: (ContinuousClock.now - started).inSeconds, connections: source.connectionCount,
                retries: source.retries)
        }
    }

    /// Full or incremental, from the format, the options and whether the target exists; refuses what
    /// cannot work before anything is opened.
    static func mode(of request: CopyRequest, targetExists: Bool) throws(CopyError) -> CopyMode {
        let target = request.targetPath
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: target, isDirectory: &isDirectory), isDirectory.boolValue {
            throw CopyError(.targetMismatch, "\(target) is a directory; give the path of an image file")
        }
        switch request.format {
        case .raw:
            if request.backingPath != nil {
                throw CopyError(
                    .targetMismatch, "--backing needs --format qcow2; a raw target is updated in place instead")
            }
            if targetExists && request.bitmap == nil && !request.overwrite {
                throw CopyError(
                    .targetMismatch,
                    "\(target) exists; pass --overwrite to replace it with a full copy, or --bitmap NAME to update it")
            }
            return targetExists && request.bitmap != nil ? .incremental : .full
        case .qcow2:
            if targetExists && !request.overwrite {
                throw CopyError(
                    .targetMismatch,
                    "\(target) exists; a qcow2 copy always makes a new image: choose a new name or pass --overwrite")
            }
            switch (request.bitmap, request.backingPath) {
            case (nil, nil): return .full
            case (.some, .some): return .incremental
            case (.some, nil):
                throw CopyError(
                    .targetMismatch, "an incremental qcow2 copy needs --backing PARENT, the previous point's image")
            case (nil, .some):
                throw CopyError(
                    .targetMismatch,
                    "--backing needs --bitmap NAME: an overlay holds only what the bitmap marks as changed")
            }
        }
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
