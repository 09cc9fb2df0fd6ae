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

    /// Frame `index` sealed: the ciphertext of `plaintext` followed by its tag, as stored, handed to `body` (which
    /// writes them) in one buffer, so that nothing is copied again and the frame takes one write.
    func seal<T>(
        _ plaintext: UnsafeRawBufferPointer, frame index: UInt64, final: Bool,
        _ body: (_ sealed: UnsafeRawBufferPointer) throws(StoreError) -> T
    ) throws(StoreError) -> T {
        let box: AES.GCM.SealedBox
        do {
            box = try AES.GCM.seal(
                plaintext, using: objectKey, nonce: Self.nonce(index), authenticating: additionalData(index, final))
        } catch {
            throw StoreError(.io, "\(location): frame \(index) cannot be sealed: \(error)", cause: error)
        }
        // A 12-byte nonce always gives the combined form: nonce, ciphertext, tag, one after another.
        let combined = box.combined!
        return try combined.withUnsafeBytes { bytes in
            Result { () throws(StoreError) in try body(UnsafeRawBufferPointer(rebasing: bytes[Self.nonceSize...])) }
        }.get()
    }

    /// The plaintext of frame `index` sealed as `sealed` (ciphertext, then tag); nil when it fails authentication.
    func open(_ sealed: UnsafeRawBufferPointer, frame index: UInt64, final: Bool) -> Data? {
        guard sealed.count >= SealedLayout.tagSize else { return nil }
        let split = sealed.count - SealedLayout.tagSize
        do {
            let box = try AES.GCM.SealedBox(
                nonce: Self.nonce(index), ciphertext: UnsafeRawBufferPointer(rebasing: sealed[..<split]),
                tag: UnsafeRawBufferPointer(rebasing: sealed[split...]))
            return try AES.GCM.open(box, using: objectKey, authenticating: additionalData(index, final))
        } catch {
            return nil
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
