/// The format of a copy's target file.
public enum TargetFormat: String, Sendable, Codable, CaseIterable {
    /// A sparse raw image, updated in place by incremental copies.
    case raw
    /// A qcow2 image: standalone for a full copy, an overlay over the previous point for an incremental one.
    case qcow2
}
