/// The cause of a ``Storage/StoreError`` about a sealed object that is not what was sealed: the frame that fails
/// authentication, or what is wrong with the header or the size. A repository tells damage (or a wrong key) apart
/// from a failed read by this cause.
public struct SealedObjectDamage: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong.
    public enum Kind: Sendable, Equatable {
        /// The frame fails authentication: changed, moved, from another object, cut short, or the key is wrong.
        case frameFailsAuthentication(frame: UInt64)
        /// The object's size is no sealed object's size: its last frame is cut inside its tag.
        case impossibleSize(sealedSize: UInt64)
        /// The header is not a version 1 sealed object's.
        case header
    }

    /// What is wrong.
    public let kind: Kind

    /// Damage of `kind`.
    public init(_ kind: Kind) {
        self.kind = kind
    }

    public var description: String {
        switch kind {
        case .frameFailsAuthentication(let frame): "frame \(frame) fails authentication"
        case .impossibleSize(let size): "\(size) bytes is no sealed object's size"
        case .header: "not a sealed object header"
        }
    }
}
