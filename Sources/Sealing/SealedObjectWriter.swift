import Storage

/// A new sealed object written by appending: the header first, then each frame sealed and appended to the base
/// writer once the frame is full and more bytes follow (so that it is known not to be the final frame); the final
/// frame is sealed by ``finish()``. Memory: one frame. Appends of more than a frame seal whole frames straight from
/// the caller's bytes.
public final class SealedObjectWriter: ObjectWriter {
    public private(set) var count: UInt64 = 0
    private let base: any ObjectWriter
    private let cipher: FrameCipher
    private let frameSize: Int
    /// The current frame's plaintext so far; full only when no byte has come after it yet.
    private var frame: [UInt8] = []
    private var frameIndex: UInt64 = 0

    /// A sealed object written into `base` as `logicalName` under `key` with frames of `layout`; `location` names it
    /// in messages. Writes the header at once.
    public init(
        _ base: any ObjectWriter, key: SealingKey, logicalName: String, location: String,
        layout: SealedLayout = SealedLayout(frameShift: SealedLayout.defaultFrameShift)!
    ) throws(StoreError) {
        let header = SealedHeader(layout: layout)
        self.base = base
        cipher = FrameCipher(key: key, header: header, logicalName: logicalName, location: location)
        frameSize = Int(layout.frameSize)
        frame.reserveCapacity(frameSize)
        try header.bytes.withBytes { bytes throws(StoreError) in try base.append(bytes) }
    }

    public func append(_ bytes: UnsafeRawBufferPointer) throws(StoreError) {
        var rest = bytes
        while !rest.isEmpty {
            if frame.count == frameSize {
                try frame.withBytes { full throws(StoreError) in try sealFrame(full, final: false) }
                frame.removeAll(keepingCapacity: true)
            }
            if frame.isEmpty, rest.count > frameSize {
                // More bytes follow this frame: it is not the final one.
                try sealFrame(UnsafeRawBufferPointer(rebasing: rest[..<frameSize]), final: false)
                rest = UnsafeRawBufferPointer(rebasing: rest[frameSize...])
                continue
            }
            let taken = min(rest.count, frameSize - frame.count)
            frame.append(contentsOf: rest[..<taken])
            rest = UnsafeRawBufferPointer(rebasing: rest[taken...])
        }
        count += UInt64(bytes.count)
    }

    public func finish() throws(StoreError) {
        try frame.withBytes { last throws(StoreError) in try sealFrame(last, final: true) }
        try base.finish()
    }

    public func discard() {
        base.discard()
    }

    private func sealFrame(_ plaintext: UnsafeRawBufferPointer, final: Bool) throws(StoreError) {
        try cipher.seal(plaintext, frame: frameIndex, final: final) { sealed throws(StoreError) in
            try base.append(sealed)
        }
        frameIndex += 1
    }
}
