import Foundation

/// libnbd's `nbdinfo` as the oracle for what an NBD export offers: its size and its block status.
package enum NBDInfo {
    /// One entry of `nbdinfo --json --map=CONTEXT`: a range, its block status flags and nbdinfo's words for them.
    package struct StatusEntry: Decodable, Sendable, Equatable, CustomStringConvertible {
        package let offset: Int64
        package let length: Int64
        package let type: Int
        /// `data`, `hole,zero`, `dirty`, `clean`...
        package let description: String

        package init(offset: Int64, length: Int64, type: Int, description: String) {
            self.offset = offset
            self.length = length
            self.type = type
            self.description = description
        }

        /// The export bytes the entry describes.
        package var range: Range<Int64> { offset..<(offset + length) }
    }

    /// `nbdinfo --size URI`.
    package static func size(_ uri: String, using runner: any CommandRunner = ScratchRunner()) async throws -> Int64 {
        let output = try await runTool(["nbdinfo", "--size", uri], using: runner)
        guard let size = Int64(output.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw HarnessError("nbdinfo --size \(uri) printed \(output)")
        }
        return size
    }

    /// The block status of meta context `context` on a running export (`nbdinfo --json --map=CONTEXT URI`).
    package static func map(
        _ uri: String, context: String, using runner: any CommandRunner = ScratchRunner()
    ) async throws -> [StatusEntry] {
        let output = try await runTool(["nbdinfo", "--json", "--map=\(context)", uri], using: runner)
        do {
            return try JSONDecoder().decode([StatusEntry].self, from: Data(output.utf8))
        } catch {
            throw HarnessError("cannot decode nbdinfo --map output \(output): \(error)")
        }
    }

    /// The dirty extents of `qemu:dirty-bitmap:BITMAP` on a running export.
    package static func dirtyRanges(
        _ uri: String, bitmap: String, using runner: any CommandRunner = ScratchRunner()
    ) async throws -> [Range<Int64>] {
        try await map(uri, context: "qemu:dirty-bitmap:\(bitmap)", using: runner).filter { $0.type & 1 != 0 }.map(
            \.range)
    }
}
