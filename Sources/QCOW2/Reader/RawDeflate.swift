internal import CZlib

/// Inflates a compressed qcow2 cluster.
///
/// qemu writes compressed clusters as raw deflate (no zlib header) with a 4 KiB window, so windowBits is
/// -12. The stored length is only known to 512 bytes, so input may remain once the cluster is full; as in
/// qemu, success means a full cluster came out.
enum RawDeflate {
    static func inflateCluster(_ input: [UInt8], clusterSize: Int, hostOffset: UInt64) throws(QCOW2Error) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: clusterSize)
        var stream = z_stream()
        guard inflateInit2_(&stream, -12, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw QCOW2Error(.io, "zlib could not start inflating the compressed cluster at \(hostOffset)")
        }
        defer { inflateEnd(&stream) }
        let (status, remaining) = input.withUnsafeBytes { inputBytes in
            output.withUnsafeMutableBytes { outputBytes in
                // zlib's next_in is not const in its declaration, but inflate never writes through it.
                stream.next_in = UnsafeMutablePointer(mutating: inputBytes.bindMemory(to: Bytef.self).baseAddress)
                stream.avail_in = uInt(inputBytes.count)
                stream.next_out = outputBytes.bindMemory(to: Bytef.self).baseAddress
                stream.avail_out = uInt(outputBytes.count)
                let status = inflate(&stream, Z_FINISH)
                return (status, stream.avail_out)
            }
        }
        guard status == Z_STREAM_END || status == Z_BUF_ERROR || status == Z_OK, remaining == 0 else {
            let problem = "zlib status \(status), \(remaining) bytes short"
            throw QCOW2Error(
                .corrupt, "the compressed cluster at \(hostOffset) does not inflate to a cluster (\(problem))")
        }
        return output
    }
}
