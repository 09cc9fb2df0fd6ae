import Foundation

/// The one JSON object `pullback copy --json` prints on stdout at the end.
struct CopyStats: Decodable, Sendable {
    let mode: String
    let exportSize: Int64
    let bytesRead: Int64
    let bytesWritten: Int64
    let zeroBytes: Int64
    let extents: Int64
    let seconds: Double
    let connections: Int
    /// Requests that failed and were tried again.
    let retries: Int
    /// "qcow2" for `--format qcow2`; absent (or "raw") otherwise.
    let format: String?

    enum CodingKeys: String, CodingKey {
        case mode
        case exportSize = "export_size"
        case bytesRead = "bytes_read"
        case bytesWritten = "bytes_written"
        case zeroBytes = "zero_bytes"
        case extents
        case seconds
        case connections, retries
        case format
    }

    /// Decodes stdout as exactly one JSON object (surrounding whitespace allowed, nothing else).
    static func decode(stdout: String) throws -> CopyStats {
        let text = stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.hasPrefix("{"), text.hasSuffix("}") else {
            throw HarnessError("stdout is not one JSON object: \(stdout)")
        }
        do {
            return try JSONDecoder().decode(CopyStats.self, from: Data(text.utf8))
        } catch {
            throw HarnessError("cannot decode --json output \(stdout): \(error)")
        }
    }
}
