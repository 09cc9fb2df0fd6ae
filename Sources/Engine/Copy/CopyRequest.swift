import Foundation
import QCOW2

/// What `pullback copy` was asked: an NBD export into a file, full or incremental by the options and whether the file
/// exists. ``CopyDescription/init(_:)`` turns it into a copy, refusing what cannot work.
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
    /// Whether a full copy may replace an existing target.
    public var overwrite = false
    /// Whether `backingPath`'s chain may hold a block or character device (FIFOs never may).
    public var backingMayBeDevice = false
    /// How a qcow2 target's clusters are stored (`--compress`).
    public var compression: ClusterCompression = .none
    /// How the data moves.
    public var transfer = TransferOptions()

    /// A copy of the export `sourceURI` into `targetPath` in `format`; the other options as set afterwards.
    public init(sourceURI: String, targetPath: String, format: TargetFormat = .raw) {
        self.sourceURI = sourceURI
        self.targetPath = targetPath
        self.format = format
    }
}

extension CopyDescription {
    /// The copy `request` asks for: full or incremental, from the format, the options and whether the target exists.
    /// Refuses what cannot work before anything is opened. A failure's message says what was left at the target.
    public init(_ request: CopyRequest) throws(CopyError) {
        let path = request.targetPath
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        if exists, isDirectory.boolValue {
            throw CopyError(.targetMismatch, "\(path) is a directory; give the path of an image file")
        }
        var target =
            switch request.format {
            case .raw: try Self.rawTarget(of: request, exists: exists)
            case .qcow2: try Self.qcow2Target(of: request, exists: exists)
            }
        if request.compression != .none {
            guard request.format == .qcow2 else {
                throw CopyError(.targetMismatch, "--compress needs --format qcow2; a raw image cannot be compressed")
            }
            target.compression = request.compression
        }
        target.explainsFailure = true
        self.init(
            from: .export(uri: request.sourceURI, bitmap: request.bitmap), to: target, transfer: request.transfer)
    }

    private static func rawTarget(of request: CopyRequest, exists: Bool) throws(CopyError) -> CopyTarget {
        let path = request.targetPath
        if request.backingPath != nil {
            throw CopyError(
                .targetMismatch, "--backing needs --format qcow2; a raw target is updated in place instead")
        }
        if exists && request.bitmap == nil && !request.overwrite {
            throw CopyError(
                .targetMismatch,
                "\(path) exists; pass --overwrite to replace it with a full copy, or --bitmap NAME to update it")
        }
        guard exists, let bitmap = request.bitmap else { return .raw(path, replacing: request.overwrite) }
        return .rawUpdate(path, describing: "incremental update from \(request.sourceURI) bitmap \(bitmap)")
    }

    private static func qcow2Target(of request: CopyRequest, exists: Bool) throws(CopyError) -> CopyTarget {
        let path = request.targetPath
        if exists && !request.overwrite {
            throw CopyError(
                .targetMismatch,
                "\(path) exists; a qcow2 copy always makes a new image: choose a new name or pass --overwrite")
        }
        switch (request.bitmap, request.backingPath) {
        case (nil, nil):
            return .qcow2(path, replacing: request.overwrite)
        case (.some, .some(let backing)):
            return .overlay(
                path, over: .image(path: backing, allowDevices: request.backingMayBeDevice),
                replacing: request.overwrite)
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
