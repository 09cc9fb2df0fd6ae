import Sealing
import UntrustedText

/// How an encrypted repository's objects are sealed, as `repository.json` records it: the scheme, how the master key
/// comes from the key file (as it is, or stretched from a passphrase with scrypt, whose salt and cost are here), and
/// the key's check value (``Sealing/SealingKey/checkValue``), so that a wrong key is named before any object is
/// read. Never the key. Everything in it is read from the repository, hence validated (``validate(in:)``) before use.
public struct RepositoryEncryption: Codable, Sendable, Equatable {
    /// The one scheme: ``Sealing/SealedStore``'s format version 1 (AES-256-GCM frames, a key per object by
    /// HKDF-SHA256).
    public static let sealedFramesV1 = "aes-256-gcm-frames-v1"

    /// How the master key is made from the key file.
    public enum KeyForm: String, Codable, Sendable {
        /// The file's 32 bytes are the key.
        case raw
        /// scrypt stretches the file's passphrase (``RepositoryEncryption/scrypt``).
        case scrypt
    }

    /// scrypt's salt and cost for a passphrase.
    public struct Scrypt: Codable, Sendable, Equatable {
        /// The salt, 32 bytes in lower-case hex.
        public var salt: String
        /// log2 of N.
        public var logN: Int
        /// The block size.
        public var r: Int
        /// The parallelism.
        public var p: Int
    }

    /// ``sealedFramesV1``.
    public var scheme: String
    /// How the master key is made from the key file.
    public var key: KeyForm
    /// Present when ``key`` is ``KeyForm/scrypt``.
    public var scrypt: Scrypt?
    /// The master key's check value, in lower-case hex.
    public var keyCheck: String

    /// The encryption of a new repository sealed under the key that `material` gives, and that key.
    static func new(for material: RepositoryKeyFile.Material) throws(RepositoryError) -> (
        RepositoryEncryption, SealingKey
    ) {
        switch material {
        case .raw(let key):
            return (
                RepositoryEncryption(
                    scheme: sealedFramesV1, key: .raw, scrypt: nil, keyCheck: Hex.encode(key.checkValue)), key
            )
        case .passphrase(let passphrase):
            let salt = SealingKey.randomSalt()
            let cost = PassphraseCost.standard
            guard let key = SealingKey(passphrase: passphrase, salt: salt, cost: cost) else {
                throw RepositoryError(.io, "scrypt cannot derive the key (out of memory?)")
            }
            let scrypt = Scrypt(salt: Hex.encode(salt), logN: cost.logN, r: cost.r, p: cost.p)
            return (
                RepositoryEncryption(
                    scheme: sealedFramesV1, key: .scrypt, scrypt: scrypt, keyCheck: Hex.encode(key.checkValue)), key
            )
        }
    }

    /// Throws ``RepositoryError/Code/corrupt`` naming `file` unless this is a scheme, key form and parameters this
    /// pullback knows, within bounds.
    func validate(in file: String) throws(RepositoryError) {
        func refuse(_ what: String) -> RepositoryError {
            RepositoryError(.corrupt, "\(file) \(what); restore repository.json from a copy of the repository")
        }
        guard scheme == Self.sealedFramesV1 else {
            throw refuse(
                "names the encryption scheme \(UntrustedText.quoted(scheme)), which this pullback does not know")
        }
        guard let check = Hex.decode(keyCheck), check.count == SealingKey.checkValueByteCount else {
            throw refuse("has a key check that is not \(SealingKey.checkValueByteCount) bytes of hex")
        }
        switch key {
        case .raw:
            guard scrypt == nil else { throw refuse("has scrypt parameters for a raw key") }
        case .scrypt:
            guard let scrypt, let salt = Hex.decode(scrypt.salt), salt.count == SealingKey.saltByteCount else {
                throw refuse("has no scrypt salt of \(SealingKey.saltByteCount) bytes of hex")
            }
            guard PassphraseCost(logN: scrypt.logN, r: scrypt.r, p: scrypt.p) != nil else {
                throw refuse(
                    "has scrypt parameters out of bounds (logN \(scrypt.logN), r \(scrypt.r), p \(scrypt.p); "
                        + "logN 10...20, r 1...32, p 1...16, at most 1 GiB)")
            }
        }
    }

    /// The master key `material` gives under this (validated) encryption, checked against the recorded check value:
    /// ``RepositoryError/Code/wrongKey`` naming `keyFile` when it is another key.
    func key(from material: RepositoryKeyFile.Material, keyFile: String, repository: String) throws(RepositoryError)
        -> SealingKey
    {
        let derived: SealingKey
        switch (key, material) {
        case (.raw, .raw(let raw)):
            derived = raw
        case (.scrypt, .passphrase(let passphrase)):
            guard let scrypt, let salt = Hex.decode(scrypt.salt),
                let cost = PassphraseCost(logN: scrypt.logN, r: scrypt.r, p: scrypt.p),
                let made = SealingKey(passphrase: passphrase, salt: salt, cost: cost)
            else { throw RepositoryError(.io, "scrypt cannot derive the key of \(repository) (out of memory?)") }
            derived = made
        case (.raw, .passphrase):
            throw RepositoryError(
                .wrongKey,
                "\(keyFile) holds a passphrase, but \(repository) is encrypted with a raw 32-byte key: give that key's file"
            )
        case (.scrypt, .raw):
            throw RepositoryError(
                .wrongKey,
                "\(keyFile) holds a raw 32-byte key, but \(repository) is encrypted with a passphrase: give the passphrase's file"
            )
        }
        guard Hex.encode(derived.checkValue) == keyCheck else {
            throw RepositoryError(
                .wrongKey,
                "the key in \(keyFile) is not the key of the encrypted repository \(repository): give the key it was made with"
            )
        }
        return derived
    }
}
