import Foundation

/// qemu-img and qemu-io, which make the images tests read and are the oracle for what the code under test reads and
/// writes: what a guest reads (`convert`), the layout (`map`), the backing chain (`info --backing-chain`). Every call
/// runs through `runner`: a test's `Fixture` keeps the output in its logs, `ScratchRunner` (the default) does not.
package enum Qemu {
    /// `qemu-img create -q -f FORMAT OPTIONS... PATH SIZE`; `options` such as `["-o", "cluster_size=4096"]`.
    package static func create(
        _ path: String, size: some BinaryInteger, format: String = "qcow2", options: [String] = [],
        using runner: any CommandRunner = ScratchRunner()
    ) async throws {
        try await runTool(["qemu-img", "create", "-q", "-f", format] + options + [path, String(size)], using: runner)
    }

    /// An overlay of `backing` (named in the overlay exactly as given), of the backing file's size unless `size` is
    /// given.
    package static func createOverlay(
        _ path: String, backing: String, backingFormat: String, size: UInt64? = nil,
        using runner: any CommandRunner = ScratchRunner()
    ) async throws {
        try await runTool(
            ["qemu-img", "create", "-q", "-f", "qcow2", "-b", backing, "-F", backingFormat, path]
                + (size.map { [String($0)] } ?? []), using: runner)
    }

    /// Runs qemu-io commands (`write -P 0xaa 0 64k`, `write -z ...`, `discard ...`) on an image in one invocation.
    /// qemu-io reports a failed command in its output and may still exit 0: that throws too.
    package static func io(
        _ path: String, format: String = "qcow2", _ commands: [String],
        using runner: any CommandRunner = ScratchRunner()
    ) async throws {
        let result = try await runner.runChecked(
            ["qemu-io", "-f", format] + commands.flatMap { ["-c", $0] } + [path])
        if result.stdout.contains("failed") || result.stderr.contains("failed") {
            throw HarnessError("qemu-io reported a failure: \(result)")
        }
    }

    /// What a guest reads from the image (its whole backing chain), as the raw file `output`.
    package static func convertToRaw(
        _ image: String, to output: String, format: String = "qcow2", using runner: any CommandRunner = ScratchRunner()
    ) async throws {
        try await runTool(["qemu-img", "convert", "-U", "-f", format, "-O", "raw", image, output], using: runner)
    }

    /// The whole guest disk as qemu reads it.
    package static func rawContents(of path: String) async throws -> [UInt8] {
        let output = path + ".reference.raw"
        defer { try? FileManager.default.removeItem(atPath: output) }
        try await convertToRaw(path, to: output)
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: output)))
    }

    /// One entry of `qemu-img map --output=json`.
    package struct MapEntry: Decodable, Sendable, CustomStringConvertible {
        package let start: Int64
        package let length: Int64
        /// 0 for the top image; for an overlay, entries taken from a backing image have depth 1 and more.
        package let depth: Int
        /// Allocated in the layer named by `depth` (data or a zero cluster); false where no layer has it.
        package let present: Bool
        package let zero: Bool
        package let data: Bool
        /// Where the entry's data lies in the layer's file, when it is data in a file.
        package let offset: Int64?

        /// The guest bytes the entry describes.
        package var range: Range<Int64> { start..<(start + length) }

        package var description: String {
            "\(start)+\(length) depth \(depth) present \(present) zero \(zero) data \(data)"
        }
    }

    /// `qemu-img map -U -f FORMAT --output=json IMAGE`, through the whole backing chain (`depth` tells the layer).
    /// `image` may also be a `json:{...}` description, e.g. of one layer with its backing file cut off.
    package static func map(
        _ image: String, format: String = "qcow2", using runner: any CommandRunner = ScratchRunner()
    ) async throws -> [MapEntry] {
        let output = try await runTool(
            ["qemu-img", "map", "-U"] + (image.hasPrefix("json:") ? [] : ["-f", format]) + ["--output=json", image],
            using: runner)
        do {
            return try JSONDecoder().decode([MapEntry].self, from: Data(output.utf8))
        } catch {
            throw HarnessError("cannot decode qemu-img map output \(output): \(error)")
        }
    }

    /// One image of `qemu-img info --output=json --backing-chain`, top first.
    package struct Info: Decodable, Sendable {
        package let filename: String
        package let format: String
        package let virtualSize: Int64
        package let clusterSize: Int64?
        package let backingFilename: String?
        package let fullBackingFilename: String?
        package let backingFilenameFormat: String?
        package let formatSpecific: FormatSpecific?

        package struct FormatSpecific: Decodable, Sendable {
            package let type: String
            package let data: QCOW2Data?
        }

        package struct QCOW2Data: Decodable, Sendable {
            package let compat: String?
            package let corrupt: Bool?
        }

        /// The qcow2 version: `1.1` (v3) or `0.10` (v2).
        package var compat: String? { formatSpecific?.data?.compat }

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

    /// `qemu-img info -U -f qcow2 --backing-chain --output=json IMAGE`: the image and its backing images, top first.
    package static func chain(_ image: String, using runner: any CommandRunner = ScratchRunner()) async throws -> [Info]
    {
        let output = try await runTool(
            ["qemu-img", "info", "-U", "-f", "qcow2", "--backing-chain", "--output=json", image], using: runner)
        do {
            return try JSONDecoder().decode([Info].self, from: Data(output.utf8))
        } catch {
            throw HarnessError("cannot decode qemu-img info output \(output): \(error)")
        }
    }
}
