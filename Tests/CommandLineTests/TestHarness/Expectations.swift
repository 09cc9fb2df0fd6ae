import Foundation
import Testing

/// Requires a successful run of pullback; the failure message carries its whole output.
func requireSuccess(_ result: CommandResult, sourceLocation: SourceLocation = #_sourceLocation) throws {
    try #require(result.succeeded, "pullback failed: \(result)", sourceLocation: sourceLocation)
}

/// The contract's error shape: the given exit code (1 by default), not killed by a signal, and exactly one line on
/// stderr starting with `pullback: error: ` that mentions each of `mentioning` (case-insensitive).
func expectCleanFailure(
    _ result: CommandResult,
    exitCode: Int32 = 1,
    mentioning: [String] = [],
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(result.signal == nil, "pullback was killed by a signal: \(result)", sourceLocation: sourceLocation)
    #expect(result.exitCode == exitCode, "expected exit \(exitCode): \(result)", sourceLocation: sourceLocation)
    let lines = result.stderrLines
    #expect(lines.count == 1, "stderr must be exactly one line: \(result)", sourceLocation: sourceLocation)
    #expect(
        lines.first?.hasPrefix("pullback: error: ") == true, "stderr must start with `pullback: error: `: \(result)",
        sourceLocation: sourceLocation)
    for word in mentioning {
        #expect(
            result.stderr.lowercased().contains(word.lowercased()), "stderr should mention \"\(word)\": \(result)",
            sourceLocation: sourceLocation)
    }
}

/// No half-written copy next to `target`: neither the target itself (when it did not exist before) nor the
/// `.pullback-partial` temporary file.
func expectNoCopyLeft(
    at target: String, targetExistedBefore: Bool = false, sourceLocation: SourceLocation = #_sourceLocation
) {
    if !targetExistedBefore {
        #expect(!FileFacts.exists(target), "a file was left at \(target)", sourceLocation: sourceLocation)
    }
    let partial = Pullback.partialPath(for: target)
    #expect(!FileFacts.exists(partial), "a temporary file was left at \(partial)", sourceLocation: sourceLocation)
}

/// Byte-for-byte equality of two files (`cmp`), plus equal apparent sizes.
func expectSameBytes(
    _ fixture: Fixture,
    _ target: String,
    _ reference: String,
    sourceLocation: SourceLocation = #_sourceLocation
) async throws {
    let targetSize = try FileFacts.size(target)
    let referenceSize = try FileFacts.size(reference)
    #expect(
        targetSize == referenceSize, "size \(targetSize) != reference size \(referenceSize)",
        sourceLocation: sourceLocation)
    let result = try await fixture.run(["cmp", target, reference])
    #expect(
        result.succeeded, "cmp \(target) \(reference) differs: \(result.stdout)\(result.stderr)",
        sourceLocation: sourceLocation)
}

/// The target holds exactly what the guest sees in the qcow2 image, checked two ways: `qemu-img compare -f raw
/// TARGET -F qcow2 IMAGE` (plus an explicit size check, since compare tolerates a longer zero tail) and `cmp` against
/// `qemu-img convert -O raw`. `cmp` reads holes as zeros, so disks of several GiB skip it (`byteForByte: false`).
func expectMatches(
    _ fixture: Fixture,
    target: String,
    image: QCOW2Image,
    byteForByte: Bool = true,
    sourceLocation: SourceLocation = #_sourceLocation
) async throws {
    #expect(
        try FileFacts.size(target) == Int64(image.size), "target size differs from the disk size",
        sourceLocation: sourceLocation)
    let compare = try await fixture.run(["qemu-img", "compare", "-U", "-f", "raw", target, "-F", "qcow2", image.path])
    #expect(compare.succeeded, "qemu-img compare: \(compare.stdout)\(compare.stderr)", sourceLocation: sourceLocation)
    guard byteForByte else { return }
    let reference = try await image.rawReference(name: "reference-\(UInt32.random(in: 0...UInt32.max)).raw")
    try await expectSameBytes(fixture, target, reference, sourceLocation: sourceLocation)
    try? FileManager.default.removeItem(atPath: reference)
}

/// The target equals a live NBD export (`qemu-img compare` reads both, skipping holes via block status, so this is
/// fast even for a 1 TiB export), plus an explicit size check.
func expectMatchesExport(
    _ fixture: Fixture,
    target: String,
    uri: String,
    sourceLocation: SourceLocation = #_sourceLocation
) async throws {
    let size = try await NBDInfo.size(uri, using: fixture)
    #expect(
        try FileFacts.size(target) == size, "target size differs from export size \(size)",
        sourceLocation: sourceLocation)
    let compare = try await fixture.run(["qemu-img", "compare", "-f", "raw", target, "-F", "raw", uri])
    #expect(
        compare.succeeded, "qemu-img compare with \(uri): \(compare.stdout)\(compare.stderr)",
        sourceLocation: sourceLocation)
}

/// The folder `restored` holds the raw disks vda and vdb of the older-repository fixture, as `reference` does, each
/// byte for byte the same (`cmp`).
func expectSameFixtureDisks(
    _ fixture: Fixture, _ restored: String, as reference: String, sourceLocation: SourceLocation = #_sourceLocation
) async throws {
    let disks = try FileFacts.listing(reference)
    #expect(disks == ["vda.raw", "vdb.raw"], sourceLocation: sourceLocation)
    #expect(try FileFacts.listing(restored) == disks, sourceLocation: sourceLocation)
    for disk in disks {
        try await fixture.runChecked(["cmp", reference + "/" + disk, restored + "/" + disk])
    }
}
