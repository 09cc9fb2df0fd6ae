/// What a backup does with raw-format disks, which carry no dirty bitmap and so no checkpoint to continue from.
public enum RawDiskPolicy: String, Sendable, Codable, CaseIterable {
    /// Leave them out, saying so (the default): a raw disk is copied whole at every point, which may be costly.
    case skip
    /// Copy each in full at every point, incremental points included: a standalone image the manifest records with
    /// no backing image, so restore, serve and verify read it as any full image.
    case full
}
