import Foundation
import Testing

/// qemu-img, qemu-io and nbdinfo as the oracle for the qcow2 images `pullback copy --format qcow2` writes: their
/// consistency (`check`), what a guest reads from them (`compare`, `convert`, `qemu-io read -P`), their layout
/// (`map`, `info --backing-chain`), and the dirty extents a bitmap export offers.
enum QemuImg {
    /// The qcow2 cluster size pullback writes, and the granularity of the bitmaps `qemu-img bitmap --add` makes on
    /// the 64 KiB-cluster source images.
    static let clusterSize: Int64 = 65536

    /// One entry of `qemu-img map --output=json`.
    struct MapEntry: Decodable, Sendable {
        let start: Int64
        let length: Int64
        /// 0 for the top image; for an overlay, entries taken from a backing image have depth 1 and more.
        let depth: Int
        /// Allocated in the layer named by `depth` (data or a zero cluster); false where no layer has it.
        let present: Bool
        let zero: Bool
        let data: Bool

        var range: Range<Int64> { start..<(start + length) }
    }

    /// One image of `qemu-img info --output=json --backing-chain`, top first.
    struct Info: Decodable, Sendable {
        let filename: String
        let format: String
        let virtualSize: Int64
        let clusterSize: Int64?
        let backingFilename: String?
        let fullBackingFilename: String?
        let backingFilenameFormat: String?
        let formatSpecific: FormatSpecific?

        struct FormatSpecific: Decodable, Sendable {
            let type: String
            let data: QCOW2Data?
        }

        struct QCOW2Data: Decodable, Sendable {
            let compat: String?
            let corrupt: Bool?
        }

        var compat: String? { formatSpecific?.data?.compat }

        enum CodingKeys: String, CodingKey {
            case filename
            case format
            case virtualSize = "virtual-size"
            case clusterSize = "cluster-size"
            case backingFilename = "backing-filename"
            case fullBackingFilename = "full-backing-filename"
            case backingFilenameFormat = "backing-filename-format"
            case formatSpecific = "format-specific"
        }
    }

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

    /// `qemu-img info --output=json --backing-chain IMAGE`: the image and its backing images, top first.
    static func chain(_ fx: Fixture, _ image: String) async throws -> [Info] {
        let result = try await fx.runChecked([
            "qemu-img", "info", "-U", "-f", "qcow2", "--backing-chain", "--output=json", image,
        ])
        do {
            return try JSONDecoder().decode([Info].self, from: Data(result.stdout.utf8))
        } catch {
            throw HarnessError("cannot decode qemu-img info output \(result.stdout): \(error)")
        }
    }

    /// `qemu-img map --output=json IMAGE` (through the whole backing chain; `depth` tells the layer).
    static func map(_ fx: Fixture, _ image: String) async throws -> [MapEntry] {
        let result = try await fx.runChecked(["qemu-img", "map", "-U", "-f", "qcow2", "--output=json", image])
        do {
            return try JSONDecoder().decode([MapEntry].self, from: Data(result.stdout.utf8))
        } catch {
            throw HarnessError("cannot decode qemu-img map output \(result.stdout): \(error)")
        }
    }

    /// What a guest reads from the qcow2 image (its whole backing chain), as a raw file.
    static func convertToRaw(_ fx: Fixture, _ image: String, to output: String) async throws {
        try await fx.runChecked(["qemu-img", "convert", "-U", "-f", "qcow2", "-O", "raw", image, output])
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

    /// One entry of `nbdinfo --json --map=CONTEXT`: a range and its block status flags.
    struct StatusEntry: Decodable, Sendable {
        let offset: Int64
        let length: Int64
        let type: Int

        var range: Range<Int64> { offset..<(offset + length) }
    }

    /// The block status of meta context `context` on a running export (`nbdinfo --json --map=CONTEXT`).
    static func statusMap(_ fx: Fixture, uri: String, context: String) async throws -> [StatusEntry] {
        let result = try await fx.runChecked(["nbdinfo", "--json", "--map=\(context)", uri])
        do {
            return try JSONDecoder().decode([StatusEntry].self, from: Data(result.stdout.utf8))
        } catch {
            throw HarnessError("cannot decode nbdinfo --map output \(result.stdout): \(error)")
        }
    }

    /// The dirty extents of `qemu:dirty-bitmap:BITMAP` on a running export (`nbdinfo --json --map=...`).
    static func dirtyRanges(_ fx: Fixture, uri: String, bitmap: String) async throws -> [Range<Int64>] {
        try await statusMap(fx, uri: uri, context: "qemu:dirty-bitmap:\(bitmap)").filter { $0.type & 1 != 0 }.map(
            \.range)
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
