internal import CZlib

/// Inflates a compressed qcow2 cluster of compression type zlib.
///
/// qemu writes compressed clusters as raw deflate (no zlib header) with a 4 KiB window, so windowBits is
/// -12. The stored length is only known to 512 bytes, so input may remain once the cluster is full; as in
/// qemu, a full cluster must come out. Unlike qemu, a stream that goes on past the cluster is refused rather than cut
/// there: no writer makes one, and a hostile image must not pass off a stream's first cluster as its content.
enum RawDeflate {
    static func inflateCluster(_ input: [UInt8], clusterSize: Int) throws(DecompressionFailure) -> [UInt8] {
        func failure(_ kind: DecompressionFailure.Kind) -> DecompressionFailure {
            DecompressionFailure(kind: kind, clusterSize: clusterSize, decoder: "deflate")
        }
        var output = [UInt8](repeating: 0, count: clusterSize)
        var stream = z_stream()
        let started = inflateInit2_(&stream, -12, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard started == Z_OK else { throw failure(.decoderUnavailable("zlib status \(started)")) }
        defer { inflateEnd(&stream) }
        let problem = input.withUnsafeBytes { inputBytes in
            output.withUnsafeMutableBytes { outputBytes in inflate(&stream, from: inputBytes, into: outputBytes) }
        }
        if let problem { throw failure(problem) }
        return output
    }

    /// Inflates `input` into `output`: nil if it fills `output` exactly, else what went wrong. Bounded by both
    /// buffers: one call with Z_FINISH stops when the input runs out or the output is full.
    private static func inflate(
        _ stream: inout z_stream, from input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer
    ) -> DecompressionFailure.Kind? {
        // zlib's next_in is not const in its declaration, but inflate never writes through it.
        stream.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
        stream.avail_in = uInt(input.count)
        stream.next_out = output.bindMemory(to: Bytef.self).baseAddress
        stream.avail_out = uInt(output.count)
        let status = CZlib.inflate(&stream, Z_FINISH)
        let produced = output.count - Int(stream.avail_out)
        switch status {
        case Z_STREAM_END:
            return produced == output.count ? nil : .shorter(produced: produced)
        case Z_OK, Z_BUF_ERROR:
            // Short of a full cluster, the input ran out; with a full one, the end of the stream may lie in input
            // that is not there (qemu accepts that), or more data follows.
            if produced < output.count { return .shorter(produced: produced) }
            return goesOn(&stream) ? .longer : nil
        case Z_MEM_ERROR:
            return .decoderUnavailable("out of memory")
        default:
            return .invalid(
                reason: stream.msg.map { String(cString: $0) } ?? "zlib status \(status)", produced: produced)
        }
    }

    /// After a full cluster that did not end the stream: whether the stream gives one byte more.
    private static func goesOn(_ stream: inout z_stream) -> Bool {
        var spare: Bytef = 0
        return withUnsafeMutablePointer(to: &spare) { pointer in
            stream.next_out = pointer
            stream.avail_out = 1
            _ = CZlib.inflate(&stream, Z_FINISH)
            return stream.avail_out == 0
        }
    }
}
