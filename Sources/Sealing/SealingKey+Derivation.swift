import Crypto
import _CryptoExtras

// MARK: - Key check value

extension SealingKey {
    /// What HMAC-SHA256 authenticates under the master key to make its check value.
    static let checkLabel = Array("pullback key check v1".utf8)

    /// How many bytes a check value has.
    public static let checkValueByteCount = SHA256.byteCount

    /// A value that tells this key from any other without revealing it: HMAC-SHA256 of a fixed label under the key.
    /// A repository records it, so that a wrong key is named at once rather than by the first object that fails
    /// authentication.
    public var checkValue: [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Self.checkLabel, using: key.key))
    }
}

// MARK: - Passphrases

/// scrypt's cost parameters for a passphrase: N = 2^`logN` rounds, block size `r`, parallelism `p`. A repository
/// records them beside a random salt; they are read from untrusted storage, so ``init(logN:r:p:)`` bounds them (at
/// most 1 GiB of memory and a few seconds of work) before anything is allocated.
public struct PassphraseCost: Sendable, Equatable, Codable {
    /// The cost for new keys: N = 2^15, r = 8, p = 1, 32 MiB and about a tenth of a second here (scrypt's
    /// interactive setting); each command derives the key once.
    public static let standard = PassphraseCost(uncheckedLogN: 15, r: 8, p: 1)

    /// log2 of N, the number of rounds.
    public let logN: Int
    /// The block size.
    public let r: Int
    /// The parallelism.
    public let p: Int

    /// The parameters, or nil when they are out of bounds: logN 10...20, r 1...32, p 1...16, and the memory scrypt
    /// needs, 128 × r × N bytes, at most 1 GiB.
    public init?(logN: Int, r: Int, p: Int) {
        guard (10...20).contains(logN), (1...32).contains(r), (1...16).contains(p) else { return nil }
        guard 128 * r << logN <= 1 << 30 else { return nil }
        self.init(uncheckedLogN: logN, r: r, p: p)
    }

    private init(uncheckedLogN logN: Int, r: Int, p: Int) {
        self.logN = logN
        self.r = r
        self.p = p
    }

    /// The bytes of memory scrypt takes with these parameters.
    var memory: Int { 128 * r << logN }
}

extension SealingKey {
    /// How many bytes a passphrase's salt has.
    public static let saltByteCount = 32

    /// A new salt for a passphrase, from the system's random generator.
    public static func randomSalt() -> [UInt8] {
        SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
    }

    /// The key scrypt derives from `passphrase` with `salt` at `cost`; nil when scrypt fails (it has no memory).
    public init?(passphrase: some Collection<UInt8>, salt: [UInt8], cost: PassphraseCost) {
        let derived: SymmetricKey
        do {
            derived = try KDF.Scrypt.deriveKey(
                from: Array(passphrase), salt: salt, outputByteCount: Self.byteCount, rounds: 1 << cost.logN,
                blockSize: cost.r, parallelism: cost.p, maxMemory: cost.memory + (1 << 20))
        } catch {
            return nil
        }
        self.init(derived: derived)
    }
}
