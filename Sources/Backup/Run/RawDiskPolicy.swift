/// What a backup does with raw-format disks, which carry no dirty bitmap and so no checkpoint to continue from.
public enum RawDiskPolicy: String, Sendable, Codable, CaseIterable {
    /// Leave them out on purpose. Without a policy they are left out too, but as missing disks that make the point
    /// partial: a raw disk is copied whole at every point, which may be costly, yet its data is not in the backup.
    case skip
    /// Copy each in full at every point, incremental points included: a standalone image the manifest records with
    /// no backing image, so restore, serve and verify read it as any full image.
    case full
}
