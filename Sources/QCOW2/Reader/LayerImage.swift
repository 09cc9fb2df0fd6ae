/// One layer of a chain, whichever format it is in: the chain only needs runs and reads from it.
enum LayerImage: Sendable {
    case raw(RawImage)
    case qcow2(QCOW2Image)

    var virtualSize: UInt64 {
        switch self {
        case .raw(let image): image.virtualSize
        case .qcow2(let image): image.virtualSize
        }
    }

    var file: any RandomAccessImage {
        switch self {
        case .raw(let image): image.file
        case .qcow2(let image): image.file
        }
    }

    func forEachRun(in range: Range<UInt64>, _ body: (LayerRun) throws(QCOW2Error) -> Void) throws(QCOW2Error) {
        switch self {
        case .raw(let image): try image.forEachRun(in: range, body)
        case .qcow2(let image): try image.forEachRun(in: range, body)
        }
    }

    func read(_ run: LayerRun, into buffer: UnsafeMutableRawBufferPointer) throws(QCOW2Error) {
        switch self {
        case .raw(let image): try image.read(run, into: buffer)
        case .qcow2(let image): try image.read(run, into: buffer)
        }
    }
}
