import Storage
import Synchronization

/// A new sealed object written at offsets from several threads (``Storage/PlacedObjectWriter``): the header is
/// written at once; a frame is sealed and written to the base writer at its sealed offset as soon as all its bytes
/// are there and a byte past it was written (so that it is not the final frame); ``finish(size:)`` seals the rest,
/// with zeros where nothing was written, frames never touched included.
///
/// Memory: the frames written in part, and at most one complete frame that may still be the final one. A write that
/// covers whole frames seals them from the caller's bytes. The qcow2 writer, whose clusters are frames at the
/// default frame size, leaves its header cluster partial until the end (the header is written last), the frames
/// at the front of its appended clusters while several threads fill them, and the last few frames (its tables,
/// written at the end): a handful of frames, whatever the image's size.
public final class SealedPlacedObjectWriter: PlacedObjectWriter {
    private let base: any PlacedObjectWriter
    private let cipher: FrameCipher
    private var layout: SealedLayout { cipher.header.layout }
    private let state = Mutex(State())

    struct State {
        /// Frames written in part: their plaintext so far (zeros where nothing was written) and how many bytes were.
        var partial: [UInt64: (plaintext: [UInt8], written: Int)] = [:]
        /// A complete frame that ends where the highest byte written ends: it may be the final frame.
        var lastComplete: (index: UInt64, plaintext: [UInt8])?
        /// One past the highest byte written.
        var end: UInt64 = 0
        /// Frames sealed and written, one bit each.
        var sealed = FrameSet()
    }

    /// A sealed object written into `base` as `logicalName` under `key` with frames of `layout`; `location` names it
    /// in messages. Writes the header at once.
    public init(
        _ base: any PlacedObjectWriter, key: SealingKey, logicalName: String, location: String,
        layout: SealedLayout = SealedLayout(frameShift: SealedLayout.defaultFrameShift)!
    ) throws(StoreError) {
        let header = SealedHeader(layout: layout)
        self.base = base
        cipher = FrameCipher(key: key, header: header, logicalName: logicalName, location: location)
        try header.bytes.withBytes { bytes throws(StoreError) in try base.write(bytes, at: 0) }
    }

    public func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(StoreError) {
        guard !bytes.isEmpty else { return }
        let (end, overflow) = offset.addingReportingOverflow(UInt64(bytes.count))
        guard !overflow, layout.sealedSize(plaintextSize: end) != nil else {
            throw StoreError(.io, "\(cipher.location): a write at \(offset) ends past the largest sealed object")
        }
        let shift = UInt64(layout.frameShift)
        let frameSize = layout.frameSize
        // Whole frames of the caller's bytes to seal here, and frames completed in memory.
        var direct: [UInt64] = []
        var completed: [(index: UInt64, plaintext: [UInt8])] = []
        state.withLock { state in
            state.end = max(state.end, end)
            if let last = state.lastComplete, (last.index + 1) << shift < state.end {
                completed.append(last)
                state.sealed.insert(last.index)
                state.lastComplete = nil
            }
            for index in (offset >> shift)...((end - 1) >> shift) {
                let frameStart = index << shift
                let from = max(offset, frameStart)
                let to = min(end, frameStart + frameSize)
                let later = frameStart + frameSize < state.end
                if to - from == frameSize, later {
                    direct.append(index)
                    state.sealed.insert(index)
                    continue
                }
                var frame =
                    state.partial.removeValue(forKey: index) ?? ([UInt8](repeating: 0, count: Int(frameSize)), 0)
                frame.plaintext.withUnsafeMutableBytes { target in
                    UnsafeMutableRawBufferPointer(rebasing: target[Int(from - frameStart)..<Int(to - frameStart)])
                        .copyMemory(
                            from: UnsafeRawBufferPointer(rebasing: bytes[Int(from - offset)..<Int(to - offset)]))
                }
                frame.written += Int(to - from)
                if frame.written < Int(frameSize) {
                    state.partial[index] = frame
                } else if later {
                    completed.append((index, frame.plaintext))
                    state.sealed.insert(index)
                } else {
                    state.lastComplete = (index, frame.plaintext)
                }
            }
        }
        try sealWhole(direct, of: bytes, at: offset)
        for frame in completed {
            try frame.plaintext.withBytes { plaintext throws(StoreError) in
                try sealFrame(plaintext, frame.index, final: false)
            }
        }
    }

    public func finish(size: UInt64) throws(StoreError) {
        let state = state.withLock { $0 }
        guard state.end <= size else {
            base.discard()
            throw StoreError(
                .io, "\(cipher.location): bytes were written up to \(state.end), past the object's size \(size)")
        }
        guard let sealedSize = layout.sealedSize(plaintextSize: size) else {
            base.discard()
            throw StoreError(.io, "\(cipher.location): \(size) bytes is more than a sealed object can hold")
        }
        let frameCount = layout.frameCount(plaintextSize: size)
        let zeros = [UInt8](repeating: 0, count: Int(layout.frameSize))
        do throws(StoreError) {
            for index in 0..<frameCount where !state.sealed.contains(index) {
                let plaintext =
                    state.lastComplete?.index == index
                    ? state.lastComplete!.plaintext : state.partial[index]?.plaintext ?? zeros
                let length = layout.plaintextLength(ofFrame: index, plaintextSize: size)
                try plaintext.withBytes { bytes throws(StoreError) in
                    try sealFrame(
                        UnsafeRawBufferPointer(rebasing: bytes[..<length]), index, final: index == frameCount - 1)
                }
            }
        } catch {
            base.discard()
            throw error
        }
        try base.finish(size: sealedSize)
    }

    public func discard() {
        base.discard()
    }

    /// Seals the whole frames `frames` (consecutive, none the final one) of `bytes`, written at `offset`, into one
    /// buffer and writes it to the base writer in one call: the base writer sees writes as large as the caller's.
    private func sealWhole(_ frames: [UInt64], of bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(StoreError) {
        guard let first = frames.first else { return }
        let shift = UInt64(layout.frameShift)
        let frameSize = Int(layout.frameSize)
        let sealedFrameSize = Int(layout.sealedFrameSize)
        var batch = [UInt8](unsafeUninitializedCapacity: frames.count * sealedFrameSize) { _, count in
            count = frames.count * sealedFrameSize
        }
        try batch.withUnsafeMutableBytes { output in
            Result { () throws(StoreError) in
                for (position, index) in frames.enumerated() {
                    precondition(index == first + UInt64(position), "whole frames of one write are consecutive")
                    let from = Int((index << shift) - offset)
                    try cipher.seal(
                        UnsafeRawBufferPointer(rebasing: bytes[from..<from + frameSize]), frame: index, final: false,
                        into: UnsafeMutableRawBufferPointer(
                            rebasing: output[position * sealedFrameSize..<(position + 1) * sealedFrameSize]))
                }
                // The offset fits: the frames end within a sealed size that was checked.
                try base.write(UnsafeRawBufferPointer(output), at: layout.sealedOffset(ofFrame: first)!)
            }
        }.get()
    }

    private func sealFrame(_ plaintext: UnsafeRawBufferPointer, _ index: UInt64, final: Bool) throws(StoreError) {
        // The offset fits: the frame ends within a sealed size that was checked.
        let offset = layout.sealedOffset(ofFrame: index)!
        try cipher.seal(plaintext, frame: index, final: final) { sealed throws(StoreError) in
            try base.write(sealed, at: offset)
        }
    }
}

/// A set of frame indexes, one bit each: 2 MiB for the frames of a 1 TiB object at 64 KiB a frame.
struct FrameSet {
    private var words: [UInt64] = []

    mutating func insert(_ index: UInt64) {
        let word = Int(index >> 6)
        if word >= words.count { words += [UInt64](repeating: 0, count: max(word + 1 - words.count, words.count)) }
        words[word] |= 1 << (index & 63)
    }

    func contains(_ index: UInt64) -> Bool {
        let word = Int(index >> 6)
        return word < words.count && words[word] & (1 << (index & 63)) != 0
    }
}
