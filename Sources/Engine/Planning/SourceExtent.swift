/// A range of the source and what it holds, as the source describes it before anything is read.
public struct SourceExtent: Sendable, Equatable {
    /// Whether a range must be read, or is known to read as zeros.
    public enum Content: Sendable, Equatable {
        /// Allocated (or unknown) data: it must be read.
        case data
        /// The range reads as zeros; nothing needs to be read.
        case zero
    }

    public var offset: UInt64
    public var length: UInt64
    public var content: Content
    /// Whether the range changed since the previous point (always true when no dirty bitmap is used).
    public var isDirty: Bool

    public init(offset: UInt64, length: UInt64, content: Content, isDirty: Bool) {
        self.offset = offset
        self.length = length
        self.content = content
        self.isDirty = isDirty
    }

    public var end: UInt64 { offset + length }
}
