import Foundation
import QCOW2
import TestSupport
import Testing

/// Checks shared by the suites: a chain against qemu's own reading and mapping of the same image.
enum Check {
    /// Reads the whole disk through `QCOW2Chain` and compares it byte for byte with `qemu-img convert`.
    static func contentsMatchQemu(_ path: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let chain = try QCOW2Chain.open(path: path)
        let expected = try await Qemu.rawContents(of: path)
        #expect(UInt64(expected.count) == chain.size, sourceLocation: sourceLocation)
        let actual = try chain.read(count: Int(chain.size), at: 0)
        if let index = (0..<min(actual.count, expected.count)).first(where: { actual[$0] != expected[$0] }) {
            Issue.record(
                "\(path): byte \(index) is \(actual[index]), qemu reads \(expected[index])",
                sourceLocation: sourceLocation)
        }
        // Unaligned pieces, so that reads starting and ending inside clusters are covered too.
        var generator = SeededRandom(seed: 7)
        for _ in 0..<64 where chain.size > 0 {
            let offset = Int(generator.next() % chain.size)
            let count = Int(generator.next() % UInt64(min(300_000, Int(chain.size) - offset) + 1))
            let piece = try chain.read(count: count, at: UInt64(offset))
            #expect(
                piece[...] == expected[offset..<offset + count], "read of \(count) at \(offset)",
                sourceLocation: sourceLocation)
        }
    }

    /// Compares `QCOW2Chain.map` with `qemu-img map`: the same kind for every byte, and the deciding layer
    /// equal to qemu's depth. Raw layers have no allocation, so there only the layer is compared.
    static func mapMatchesQemu(_ path: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let chain = try QCOW2Chain.open(path: path)
        let extents = try chain.map(0..<chain.size)
        try coversExactly(extents, 0..<chain.size, sourceLocation: sourceLocation)
        for entry in try await Qemu.map(path) {
            for extent in try chain.map(UInt64(entry.start)..<UInt64(entry.start + entry.length)) {
                let context = Comment(rawValue: "qemu \(entry) against \(extent)")
                if !entry.present {
                    #expect(extent.kind == .unallocated && extent.layer == nil, context, sourceLocation: sourceLocation)
                } else if chain.layers[entry.depth].format == .raw {
                    // qemu rounds a raw file's size up to 512 bytes; past its real end, no layer has data.
                    if extent.offset >= chain.layers[entry.depth].virtualSize {
                        #expect(
                            extent.kind == .unallocated && extent.layer == nil, context, sourceLocation: sourceLocation)
                    } else {
                        #expect(
                            extent.kind == .data && extent.layer == entry.depth, context, sourceLocation: sourceLocation
                        )
                    }
                } else {
                    #expect(extent.kind == (entry.data ? .data : .zero), context, sourceLocation: sourceLocation)
                    #expect(extent.layer == entry.depth, context, sourceLocation: sourceLocation)
                }
            }
        }
    }

    /// The extents are in order, non-empty, touching, cover `range` exactly, and are merged.
    static func coversExactly(
        _ extents: [ChainExtent], _ range: Range<UInt64>, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        var next = range.lowerBound
        for (index, extent) in extents.enumerated() {
            #expect(extent.length > 0, sourceLocation: sourceLocation)
            #expect(
                extent.offset == next, "extent \(index) \(extent) should start at \(next)",
                sourceLocation: sourceLocation)
            if index > 0 {
                let previous = extents[index - 1]
                #expect(
                    previous.kind != extent.kind || previous.layer != extent.layer,
                    "\(previous) and \(extent) are not merged",
                    sourceLocation: sourceLocation)
            }
            next = extent.offset + extent.length
        }
        #expect(next == range.upperBound, sourceLocation: sourceLocation)
    }
}

/// Expects `body` to throw a QCOW2Error with `code` and returns it.
@discardableResult
func expectError(
    _ code: QCOW2Error.Code, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) -> QCOW2Error? {
    do {
        try body()
        Issue.record("expected a \(code) error, got none", sourceLocation: sourceLocation)
    } catch let error as QCOW2Error {
        #expect(error.code == code, "got \(error.code): \(error.message)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected a QCOW2Error, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}
