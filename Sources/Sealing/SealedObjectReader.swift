import Foundation
import Storage
import Synchronization

/// A sealed object open for reading its plaintext: ``size`` is the plaintext size, and a read fetches the frames
/// covering its range in one ranged read of the sealed object, opens each and copies out what was asked. Reads from
/// several threads at once need no lock but the one around the cache of the last frame opened, which saves opening a
/// frame again for each of many small reads inside it.
///
/// Opening checks the header and the size, and authenticates the final frame, so that ``size`` is the size that
/// was sealed before anyone relies on it. Any frame that fails authentication, at opening or later, is a
/// ``Storage/StoreError`` of one line naming the object and the frame, with a ``SealedObjectDamage`` as its cause.
public final class SealedObjectReader: ObjectReader {
    /// The most frames one read covers: a longer read returns fewer bytes than asked (callers read on).
    static let framesPerRead: UInt64 = 64

    public let size: UInt64
    private let base: any ObjectReader
    private let cipher: FrameCipher
    private var layout: SealedLayout { cipher.header.layout }
    private let frameCount: UInt64
    /// The last frame opened: its index and plaintext.
    private let cache = Mutex<(index: UInt64, plaintext: [UInt8])?>(nil)

    /// The plaintext of the sealed object `base`, sealed as `logicalName` under `key`; `location` names it in
    /// messages. Throws when the header is not a sealed object's, the size is no sealed object's, or the final
    /// frame fails authentication.
    public init(_ base: any ObjectReader, key: SealingKey, logicalName: String, location: String) throws(StoreError) {
        let headerBytes = try Self.readFully(base, count: min(base.size, UInt64(SealedLayout.headerSize)), at: 0)
        let header: SealedHeader
        switch SealedHeader.parse(headerBytes) {
        case .success(let parsed): header = parsed
        case .failure(let problem):
            throw StoreError(
                .notAnObject, "\(location) is not a sealed object: \(problem.reason)",
                cause: SealedObjectDamage(.header))
        }
        guard let size = header.layout.plaintextSize(sealedSize: base.size) else {
            throw StoreError(
                .notAnObject,
                "\(location): \(base.size) bytes is no sealed object's size: its last frame is cut short; "
                    + "the repository is damaged",
                cause: SealedObjectDamage(.impossibleSize(sealedSize: base.size)))
        }
        self.base = base
        self.size = size
        cipher = FrameCipher(key: key, header: header, logicalName: logicalName, location: location)
        frameCount = header.layout.frameCount(plaintextSize: size)
        try openFrames(frameCount - 1...frameCount - 1) { _, _ in .none }
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(StoreError) -> Int {
        guard offset < size, buffer.count > 0 else { return 0 }
        let (wanted, overflow) = offset.addingReportingOverflow(UInt64(buffer.count))
        let end = overflow ? size : min(wanted, size)
        let shift = UInt64(layout.frameShift)
        let first = offset >> shift
        let last = min((end - 1) >> shift, first + Self.framesPerRead - 1)
        var copied = 0
        try openFrames(first...last) { index, length in
            let frameStart = index << shift
            let from = Int(max(offset, frameStart) - frameStart)
            let count = min(length - from, buffer.count - copied)
            defer { copied += count }
            // A frame the read wants whole is opened straight into the caller's buffer.
            guard from == 0, count == length else { return .partly(from: from, into: buffer[copied..<copied + count]) }
            return .whole(into: UnsafeMutableRawBufferPointer(rebasing: buffer[copied..<copied + count]))
        }
        return copied
    }

    public func readsOnceInOrder() {
        base.readsOnceInOrder()
    }

    /// Where a read wants a frame's plaintext.
    private enum FrameUse {
        /// All of it, into this buffer (which then holds nothing to use if the frame fails authentication).
        case whole(into: UnsafeMutableRawBufferPointer)
        /// The bytes from `from` on that fit this slice of the caller's buffer.
        case partly(from: Int, into: Slice<UnsafeMutableRawBufferPointer>)
        /// None: the frame is only authenticated.
        case none
    }

    /// Opens frames `frames` in order, each where `use` (given its index and plaintext length) says: from the cache
    /// when it is the one frame cached, else from one ranged read of the sealed object. A frame opened in part is
    /// cached, for the many small reads (a qcow2 table's entries) that often follow inside it.
    private func openFrames(_ frames: ClosedRange<UInt64>, _ use: (UInt64, Int) -> FrameUse) throws(StoreError) {
        if frames.count == 1, let cached = cache.withLock({ $0 }), cached.index == frames.lowerBound {
            Self.deliver(cached.plaintext, as: use(cached.index, cached.plaintext.count))
            return
        }
        // Both offsets are within the sealed size, which was checked when the reader opened.
        let start = layout.sealedOffset(ofFrame: frames.lowerBound)!
        let end = layout.sealedOffset(ofFrame: frames.upperBound)! + UInt64(sealedLength(of: frames.upperBound))
        let sealed = try Self.readFully(base, count: end - start, at: start)
        var position = 0
        var opened: (index: UInt64, plaintext: [UInt8])?
        for index in frames {
            let length = sealedLength(of: index)
            guard sealed.count - position >= length else {
                throw StoreError(
                    .io, "\(cipher.location) ends before frame \(index): it is shorter than when it was opened")
            }
            let final = index == frameCount - 1
            let plaintextLength = length - SealedLayout.tagSize
            let wanted = use(index, plaintextLength)
            let authentic = sealed.withUnsafeBytes { bytes in
                let frame = UnsafeRawBufferPointer(rebasing: bytes[position..<position + length])
                if case .whole(let target) = wanted {
                    return cipher.open(frame, frame: index, final: final, into: target)
                }
                var plaintext = [UInt8](repeating: 0, count: plaintextLength)
                let authentic = plaintext.withUnsafeMutableBytes {
                    cipher.open(frame, frame: index, final: final, into: $0)
                }
                if authentic {
                    Self.deliver(plaintext, as: wanted)
                    opened = (index, plaintext)
                }
                return authentic
            }
            guard authentic else { throw failsAuthentication(index) }
            position += length
        }
        if let opened { cache.withLock { $0 = opened } }
    }

    /// Copies what `use` asks of the frame's `plaintext`.
    private static func deliver(_ plaintext: [UInt8], as use: FrameUse) {
        plaintext.withUnsafeBytes { bytes in
            switch use {
            case .whole(let target):
                target.copyMemory(from: bytes)
            case .partly(let from, let target):
                UnsafeMutableRawBufferPointer(rebasing: target)
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[from..<from + target.count]))
            case .none:
                break
            }
        }
    }

    /// The bytes frame `index` takes in the sealed object.
    private func sealedLength(of index: UInt64) -> Int {
        layout.plaintextLength(ofFrame: index, plaintextSize: size) + SealedLayout.tagSize
    }

    private func failsAuthentication(_ index: UInt64) -> StoreError {
        StoreError(
            .io,
            "\(cipher.location): frame \(index) fails authentication: it was changed, moved or comes from another "
                + "object; the repository is damaged or the key is wrong",
            cause: SealedObjectDamage(.frameFailsAuthentication(frame: index)))
    }

    /// `count` bytes of `base` from `offset`, or fewer when it ends first.
    private static func readFully(_ base: any ObjectReader, count: UInt64, at offset: UInt64) throws(StoreError)
        -> [UInt8]
    {
        var failure: StoreError?
        // Uninitialized: every byte is read before it is used, and the count is what was read.
        let bytes = [UInt8](unsafeUninitializedCapacity: Int(count)) { buffer, initialized in
            initialized = 0
            while initialized < buffer.count {
                do throws(StoreError) {
                    let read = try base.read(
                        into: UnsafeMutableRawBufferPointer(
                            UnsafeMutableBufferPointer(rebasing: buffer[initialized...])),
                        at: offset + UInt64(initialized))
                    if read == 0 { break }
                    initialized += read
                } catch {
                    failure = error
                    break
                }
            }
        }
        if let failure { throw failure }
        return bytes
    }
}
