/// A raw image file as a layer, usually the base of a chain: guest offset and file offset are the same,
/// and the disk is as large as the file.
final class RawImage: Sendable {
    let file: any RandomAccessImage

    init(file: any RandomAccessImage) { self.file = file }

    var virtualSize: UInt64 { file.size }

    /// Raw has no allocation metadata: the file system's holes (SEEK_DATA/SEEK_HOLE) are unallocated, reading as
    /// zeros as qemu reports them (a raw layer is always the bottom of a chain), and the rest is data at the same
    /// offset. Without hole support it is all data.
    func forEachRun(in range: Range<UInt64>, _ body: (LayerRun) throws(QCOW2Error) -> Void) throws(QCOW2Error) {
        var position = range.lowerBound
        while position < range.upperBound {
            let data = min(max(file.nextData(from: position) ?? range.upperBound, position), range.upperBound)
            if data > position {
                try body(LayerRun(offset: position, length: data - position, mapping: .unallocated))
            }
            guard data < range.upperBound else { return }
            // At least one byte of data, so that a file changing under the reader cannot stall the loop.
            let hole = min(max(file.nextHole(from: data), data + 1), range.upperBound)
            try body(LayerRun(offset: data, length: hole - data, mapping: .data(hostOffset: data)))
            position = hole
        }
    }

    /// Reads a run; the file reads zeros past its end if it shrank after being opened.
    func read(_ run: LayerRun, into buffer: UnsafeMutableRawBufferPointer) throws(QCOW2Error) {
        try file.read(into: buffer, at: run.offset)
    }
}
