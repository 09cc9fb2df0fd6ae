/// Decompresses one compressed cluster with the image's compression type, to exactly a cluster.
///
/// A repository is untrusted, so each decoder writes into the cluster's own buffer and nothing larger: a stream that
/// would give more than a cluster (a decompression bomb) stops there and is refused, as is one that gives less. Both
/// decoders fail the same way (``DecompressionFailure``), so that the image reports them in one shape.
enum ClusterDecompressor {
    /// The cluster that `input`, the bytes the L2 entry describes (up to the end of the file), decompresses to.
    /// `compressionType` is one the header parser accepted.
    static func decompress(_ input: [UInt8], compressionType: UInt8, clusterSize: Int)
        throws(DecompressionFailure) -> [UInt8]
    {
        switch compressionType {
        case QCOW2Header.CompressionType.zstd: try ZstdCluster.decompress(input, clusterSize: clusterSize)
        default: try RawDeflate.inflateCluster(input, clusterSize: clusterSize)
        }
    }
}

/// Why a compressed cluster did not decompress to exactly one cluster.
struct DecompressionFailure: Error, CustomStringConvertible {
    enum Kind {
        /// The data goes on past a full cluster.
        case longer
        /// The data ended (or the input ran out) after `produced` bytes.
        case shorter(produced: Int)
        /// The decoder refused the data after `produced` bytes; `reason` is its own word for why.
        case invalid(reason: String, produced: Int)
        /// The decoder could not start (out of memory): not the image's fault.
        case decoderUnavailable(String)
    }

    var kind: Kind
    /// The size the data should have decompressed to.
    var clusterSize: Int
    /// "zstd" or "deflate", for the message.
    var decoder: String

    /// Says what the data did, for "the compressed cluster at OFFSET ...".
    var description: String {
        switch kind {
        case .longer:
            "decompresses (\(decoder)) to more than a cluster of \(clusterSize) bytes"
        case .shorter(let produced):
            "decompresses (\(decoder)) to \(produced) bytes, less than a cluster of \(clusterSize)"
        case .invalid(let reason, let produced):
            "is not valid \(decoder) data (\(reason), after \(produced) of \(clusterSize) bytes)"
        case .decoderUnavailable(let reason):
            "could not be decompressed: \(decoder) did not start (\(reason))"
        }
    }
}
