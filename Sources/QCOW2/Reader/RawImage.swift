/// A raw image file as a layer, usually the base of a chain: guest offset and file offset are the same,
/// and the disk is as large as the file.
final class RawImage: Sendable {
    let file: ReadOnlyFile

    init(file: ReadOnlyFile) { self.file = file }

    var virtualSize: UInt64 { file.size }

    /// Raw has no allocation metadata, so all of it is data at the same offset.
    func forEachRun(in range: Range<UInt64>, _ body: (LayerRun) throws(QCOW2Error) -> Void) throws(QCOW2Error) {
        guard !range.isEmpty else { return }
        try body(
            LayerRun(
                offset: range.lowerBound, length: UInt64(range.count), mapping: .data(hostOffset: range.lowerBound)))
    }

    /// Reads a run; the file reads zeros past its end if it shrank after being opened.
    func read(_ run: LayerRun, into buffer: UnsafeMutableRawBufferPointer) throws(QCOW2Error) {
        try file.read(into: buffer, at: run.offset)
    }
}
