import Foundation
import Testing

/// qemu-img and qemu-io as the oracle for the qcow2 images `pullback` writes: their consistency (`check`), what a guest
/// reads from them (`compare`, `qemu-io read -P`), and the clusters extents touch. Making images, converting them and
/// their layout (`map`, `info --backing-chain`) are the shared `Qemu`'s.
extension Qemu {
    /// The qcow2 cluster size pullback writes, and the granularity of the bitmaps `qemu-img bitmap --add` makes on
    /// the 64 KiB-cluster source images.
    static let clusterSize: Int64 = 65536

    /// `qemu-img check -f qcow2 IMAGE` must exit 0 (no corruption, no leaks) and say "No errors were found".
    static func expectCheckClean(
        _ fx: Fixture, _ image: String, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let check = try await fx.run(["qemu-img", "check", "-f", "qcow2", image])
        #expect(
            check.succeeded && check.stdout.contains("No errors were found"),
            "qemu-img check \(image): \(check)", sourceLocation: sourceLocation)
    }

    /// `qemu-img compare -f qcow2 IMAGE -F FORMAT REFERENCE` says "Images are identical." (exit 0). Both must have
    /// the same virtual size as well: compare only warns about a size mismatch when the longer tail reads as zeros.
    static func expectIdentical(
        _ fx: Fixture,
        _ image: String,
        _ reference: String,
        referenceFormat: String = "raw",
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let compare = try await fx.run([
            "qemu-img", "compare", "-U", "-f", "qcow2", image, "-F", referenceFormat, reference,
        ])
        #expect(
            compare.succeeded && compare.stdout.contains("Images are identical"),
            "qemu-img compare \(image) \(reference): \(compare)", sourceLocation: sourceLocation)
        #expect(
            !compare.stdout.contains("size mismatch") && !compare.stderr.contains("size mismatch"),
            "virtual sizes differ: \(compare)", sourceLocation: sourceLocation)
    }

    /// `qemu-io -r -f qcow2 -c CMD... IMAGE` for `read -P PATTERN OFFSET LENGTH` checks: every read must succeed and
    /// verify (qemu-io prints "Pattern verification failed" on a mismatch).
    static func expectReads(
        _ fx: Fixture, _ image: String, _ commands: [String], sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        var command = ["qemu-io", "-r", "-f", "qcow2"]
        for each in commands {
            command += ["-c", each]
        }
        command.append(image)
        let result = try await fx.run(command)
        let output = result.stdout + result.stderr
        #expect(
            result.succeeded && !output.contains("failed") && !output.contains("error"),
            "qemu-io reads on \(image): \(result)", sourceLocation: sourceLocation)
    }

    /// Indices of the 64 KiB clusters that `ranges` touch (each range widened outwards to whole clusters).
    static func clusters(_ ranges: [Range<Int64>]) -> Set<Int64> {
        var result = Set<Int64>()
        for range in ranges where !range.isEmpty {
            for index in (range.lowerBound / clusterSize)...((range.upperBound - 1) / clusterSize) {
                result.insert(index)
            }
        }
        return result
    }

    /// The virtual size field of a qcow2 header (bytes 24..<32, big-endian), as stored, before qemu rounds it.
    static func headerSize(_ image: String) throws -> UInt64 {
        let bytes = try FileFacts.bytes(image, at: 24, count: 8)
        guard bytes.count == 8 else { throw HarnessError("\(image) is too short for a qcow2 header") }
        return bytes.reduce(0) { $0 << 8 | UInt64($1) }
    }
}
