import Crypto

/// A repository's master key: 32 secret bytes from which the key of every sealed object is derived. Its bytes are
/// never printed: `description`, `debugDescription` and `dump` show only that a key is there.
public struct SealingKey: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// How many bytes a master key has.
    public static let byteCount = 32

    let key: SharedSymmetricKey

    /// The key made of `bytes`; nil unless there are exactly ``byteCount`` of them.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == Self.byteCount else { return nil }
        key = SharedSymmetricKey(SymmetricKey(data: Array(bytes)))
    }

    /// A new key from the system's random generator.
    public static func random() -> SealingKey {
        SealingKey(key: SharedSymmetricKey(SymmetricKey(size: .bits256)))
    }

    private init(key: SharedSymmetricKey) {
        self.key = key
    }

    /// The key made of what a key derivation gave.
    init(derived: SymmetricKey) {
        key = SharedSymmetricKey(derived)
    }

    public var description: String { "SealingKey(\(Self.byteCount) secret bytes)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: [:]) }
}

/// A key that threads share. swift-crypto 3 does not mark `SymmetricKey` Sendable off Apple platforms, but nothing
/// writes a key's storage after it is made, and reading it from several threads at once is safe.
struct SharedSymmetricKey: @unchecked Sendable {  // immutable after init: only read
    let key: SymmetricKey

    init(_ key: SymmetricKey) {
        self.key = key
    }
}
