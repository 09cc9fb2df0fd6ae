import QCOW2
import Storage

/// One image of a disk's chain at a point: the point's own image, or one of the parent points' it is based on.
public struct ImageLayer: Sendable, Equatable {
    /// The id of the point the image belongs to.
    public var point: String
    /// The image's path: `<repository>/<domain>/<point>/<target>.qcow2`; for a store whose objects are not local
    /// files, the object's location (a URL), for messages.
    public var path: String
    /// The backing file name the image must record (`../<parent>/<target>.qcow2`), nil for the base.
    public var backingName: String?
    /// The image's digest as the point's manifest recorded it, if it did.
    public var recordedDigest: String?
    /// The object the image is read from when it is not a local file at ``path``.
    package var object: StoredObject?

    /// The image `path` of point `point`, read from `object` when it is not a local file.
    package init(
        point: String, path: String, backingName: String? = nil, recordedDigest: String? = nil,
        object: StoredObject? = nil
    ) {
        self.point = point
        self.path = path
        self.backingName = backingName
        self.recordedDigest = recordedDigest
        self.object = object
    }

    /// The image as a chain reader opens it: the file at ``path``, or the object through its store.
    public var expectedLayer: QCOW2Chain.ExpectedLayer {
        guard let object else { return QCOW2Chain.ExpectedLayer(path: path, backingName: backingName) }
        return QCOW2Chain.ExpectedLayer(name: path, backingName: backingName) { () throws(QCOW2Error) in
            try StoredImage(object.key, of: object.store)
        }
    }

    /// Equal when they describe the same image, however it is read.
    public static func == (a: ImageLayer, b: ImageLayer) -> Bool {
        a.point == b.point && a.path == b.path && a.backingName == b.backingName && a.recordedDigest == b.recordedDigest
    }
}

/// An object of a store: where an image that is no local file is read from.
package struct StoredObject: Sendable {
    package var store: any ObjectStore
    package var key: ObjectKey
}
