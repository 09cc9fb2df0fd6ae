internal import CZstd

/// Decompresses a compressed qcow2 cluster of compression type zstd.
///
/// qemu writes each cluster as one zstd frame that records its size (block/qcow2-threads.c); the stored length is only
/// known to 512 bytes, so input may remain after it. As in qemu, frames are decoded until a full cluster came out, and
/// then the frame must be complete. The decoder writes into the cluster's buffer, and the window a frame may ask for
/// is at most a cluster, so a hostile frame costs at most about a cluster besides the context (96 KiB).
enum ZstdCluster {
    static func decompress(_ input: [UInt8], clusterSize: Int) throws(DecompressionFailure) -> [UInt8] {
        func failure(_ kind: DecompressionFailure.Kind) -> DecompressionFailure {
            DecompressionFailure(kind: kind, clusterSize: clusterSize, decoder: "zstd")
        }
        guard let context = ZstdContextPool.shared.take() else { throw failure(.decoderUnavailable("out of memory")) }
        defer { ZstdContextPool.shared.giveBack(context) }
        // A frame's window is the memory it makes the decoder take. One that fits the content needs no more than the
        // content; qemu's frames record their size and get exactly that.
        ZSTD_DCtx_reset(context.pointer, ZSTD_reset_session_and_parameters)
        let smallest = ZSTD_dParam_getBounds(ZSTD_d_windowLogMax).lowerBound  // 1 KiB
        let windowLog = max(smallest, Int32(clusterSize.trailingZeroBitCount))
        let limited = ZSTD_DCtx_setParameter(context.pointer, ZSTD_d_windowLogMax, windowLog)
        guard ZSTD_isError(limited) == 0 else {
            throw failure(.decoderUnavailable(String(cString: ZSTD_getErrorName(limited))))
        }
        var output = [UInt8](repeating: 0, count: clusterSize)
        let problem = input.withUnsafeBytes { inputBytes in
            output.withUnsafeMutableBytes { outputBytes in decode(context.pointer, from: inputBytes, into: outputBytes)
            }
        }
        if let problem { throw failure(problem) }
        return output
    }

    /// Decodes frames from `input` into `output`: nil if they fill it exactly, ending a frame there. Each step must
    /// consume input or produce output (as qemu checks), so the loop is bounded by the two buffers.
    private static func decode(
        _ context: OpaquePointer, from input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer
    ) -> DecompressionFailure.Kind? {
        var source = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        var target = ZSTD_outBuffer(dst: output.baseAddress, size: output.count, pos: 0)
        // zstd's hint of what the current frame still needs: 0 when a frame is complete and flushed.
        var frameRest = 1
        while target.pos < target.size {
            let before = (source.pos, target.pos)
            let previousRest = frameRest
            frameRest = ZSTD_decompressStream(context, &target, &source)
            if ZSTD_isError(frameRest) != 0 {
                // Right after a complete frame the input holds the padding to a sector: the frames ended short.
                if previousRest == 0 { return .shorter(produced: target.pos) }
                return .invalid(reason: String(cString: ZSTD_getErrorName(frameRest)), produced: target.pos)
            }
            if (source.pos, target.pos) == before { return .shorter(produced: target.pos) }
        }
        return frameRest == 0 ? nil : .longer
    }
}
