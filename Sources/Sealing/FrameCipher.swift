import Crypto
import Foundation
import Storage

/// Seals and opens the frames of one sealed object: AES-256-GCM under the object's key, which HKDF-SHA256 derives
/// from the master key, the header's salt and the object's logical name. A frame's nonce is its index; its
/// additional data is the whole header, its index and whether it is the final frame, so that a frame authenticates
/// only at its own place in its own object, and only the final frame ends an object.
struct FrameCipher: Sendable {
    /// What HKDF's info starts with; the logical name follows.
    static let infoPrefix = Array("pullback sealed object v1\0".utf8)

    let header: SealedHeader
    /// Where the object is, for messages.
    let location: String
    private let sharedKey: SharedSymmetricKey
    private var objectKey: SymmetricKey { sharedKey.key }

    /// The cipher of the object `logicalName` at `location` whose header is `header`, under the master key `key`.
    init(key: SealingKey, header: SealedHeader, logicalName: String, location: String) {
        self.header = header
        self.location = location
        sharedKey = SharedSymmetricKey(
            HKDF<SHA256>.deriveKey(
                inputKeyMaterial: key.key.key, salt: header.salt, info: Self.infoPrefix + Array(logicalName.utf8),
                outputByteCount: 32))
    }

    /// Seals frame `index` from `plaintext` into `output` as it is stored: the ciphertext, then the 16-byte tag.
    /// (swift-crypto seals into a box of its own, which is copied out while it is still in the cache; its AES-GCM,
    /// BoringSSL's, is more than twice as fast here as the system's OpenSSL 3.0 sealing in place.)
    func seal(
        _ plaintext: UnsafeRawBufferPointer, frame index: UInt64, final: Bool,
        into output: UnsafeMutableRawBufferPointer
    ) throws(StoreError) {
        precondition(
            output.count == plaintext.count + SealedLayout.tagSize, "a sealed frame is its plaintext and a tag")
        let box: AES.GCM.SealedBox
        do {
            box = try AES.GCM.seal(
                plaintext, using: objectKey, nonce: Self.nonce(index), authenticating: additionalData(index, final))
        } catch {
            throw StoreError(.io, "\(location): frame \(index) cannot be sealed: \(error)", cause: error)
        }
        // A 12-byte nonce always gives the combined form: nonce, ciphertext, tag, one after another.
        box.combined!.withUnsafeBytes { bytes in
            output.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[Self.nonceSize...]))
        }
    }

    /// Frame `index` sealed from `plaintext`, handed to `body` (which writes it) as it is stored.
    func seal<T>(
        _ plaintext: UnsafeRawBufferPointer, frame index: UInt64, final: Bool,
        _ body: (_ sealed: UnsafeRawBufferPointer) throws(StoreError) -> T
    ) throws(StoreError) -> T {
        var sealed = [UInt8](repeating: 0, count: plaintext.count + SealedLayout.tagSize)
        return try sealed.withUnsafeMutableBytes { output in
            Result { () throws(StoreError) in
                try seal(plaintext, frame: index, final: final, into: output)
                return try body(UnsafeRawBufferPointer(output))
            }
        }.get()
    }

    /// Opens frame `index` stored as `sealed` (ciphertext, then tag) into `output`, which has room for exactly its
    /// plaintext; false when it fails authentication.
    func open(
        _ sealed: UnsafeRawBufferPointer, frame index: UInt64, final: Bool, into output: UnsafeMutableRawBufferPointer
    ) -> Bool {
        guard sealed.count >= SealedLayout.tagSize, output.count == sealed.count - SealedLayout.tagSize else {
            return false
        }
        let split = sealed.count - SealedLayout.tagSize
        do {
            let box = try AES.GCM.SealedBox(
                nonce: Self.nonce(index), ciphertext: UnsafeRawBufferPointer(rebasing: sealed[..<split]),
                tag: UnsafeRawBufferPointer(rebasing: sealed[split...]))
            let plaintext = try AES.GCM.open(box, using: objectKey, authenticating: additionalData(index, final))
            plaintext.withUnsafeBytes { output.copyMemory(from: $0) }
            return true
        } catch {
            return false
        }
    }

    /// The header, the frame's index (8 bytes big-endian) and 1 for the final frame, else 0.
    private func additionalData(_ index: UInt64, _ final: Bool) -> [UInt8] {
        var data = header.bytes
        data.reserveCapacity(SealedLayout.headerSize + 9)
        withUnsafeBytes(of: index.bigEndian) { data += $0 }
        data.append(final ? 1 : 0)
        return data
    }

    /// How many bytes a nonce has.
    static let nonceSize = 12

    /// The frame's index as 12 bytes big-endian: unique per frame of an object whose key is used for nothing else.
    private static func nonce(_ index: UInt64) -> AES.GCM.Nonce {
        var bytes = [UInt8](repeating: 0, count: nonceSize - 8)
        withUnsafeBytes(of: index.bigEndian) { bytes += $0 }
        // 12 bytes are always a valid nonce.
        return try! AES.GCM.Nonce(data: bytes)
    }
}
