import S3

extension BucketStore {
    /// How many deletions or aborts run at once.
    static let requestsInFlight = 8

    public func kind(of key: ObjectKey) throws(StoreError) -> ObjectEntry.Kind? {
        let name = objectName(key)
        if try bucketStep({ () throws(S3Error) in try client.headObject(bucket: bucket, key: name) }) != nil {
            return .object
        }
        let page = try bucketStep { () throws(S3Error) in
            try client.listObjects(
                bucket: bucket, prefix: listPrefix(key), delimiter: nil, continuationToken: nil, maxKeys: 1)
        }
        return page.objects.isEmpty && page.commonPrefixes.isEmpty ? nil : .prefix
    }

    public func open(_ key: ObjectKey) throws(StoreError) -> (any ObjectReader)? {
        let name = objectName(key)
        guard let head = try bucketStep({ () throws(S3Error) in try client.headObject(bucket: bucket, key: name) })
        else { return nil }
        return BucketObjectReader(object: object(key), size: head.size)
    }

    /// The object is sent in one request when it fits in one part, else as a multipart upload.
    public func create(_ key: ObjectKey) throws(StoreError) -> any ObjectWriter {
        BucketObjectWriter(placed: BucketPlacedObjectWriter(object: object(key), partSize: Self.minimumPartSize))
    }

    public func createPlaced(_ key: ObjectKey, expectedSize: UInt64) throws(StoreError) -> any PlacedObjectWriter {
        BucketPlacedObjectWriter(object: object(key), partSize: Self.partSize(forExpectedSize: expectedSize))
    }

    /// The part size for an object of about `expectedSize` bytes: at least ``minimumPartSize``, in whole MiB, and
    /// large enough that the object fills at most 8,000 of S3's 10,000 parts, so that it may grow by a quarter (its
    /// tables, a disk grown meanwhile) and still fit.
    public static func partSize(forExpectedSize expectedSize: UInt64) -> Int {
        let mebibyte: UInt64 = 1 << 20
        let needed = (expectedSize / 8_000 + mebibyte - 1) / mebibyte * mebibyte
        return Int(max(UInt64(minimumPartSize), needed))
    }

    public func list(under prefix: ObjectKey?) throws(StoreError) -> [ObjectEntry] {
        let listed = listPrefix(prefix)
        var entries: [ObjectEntry] = []
        var token: String?
        repeat {
            let page = try bucketStep { () throws(S3Error) in
                try client.listObjects(
                    bucket: bucket, prefix: listed, delimiter: "/", continuationToken: token, maxKeys: listPageSize)
            }
            for object in page.objects {
                // A folder marker ("<prefix>/", as consoles make) is the prefix itself, not a child.
                guard let name = Self.childName(object.key, under: listed), !name.isEmpty else { continue }
                entries.append(ObjectEntry(name: name, kind: .object))
            }
            for common in page.commonPrefixes where common.hasSuffix("/") {
                guard let name = Self.childName(String(common.dropLast()), under: listed) else { continue }
                entries.append(ObjectEntry(name: name, kind: .prefix))
            }
            token = page.nextContinuationToken
        } while token != nil
        return entries.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
    }

    /// The name of `key` under the listing prefix `listed`, nil for a key outside it (which a store never lists,
    /// whatever the server answers). The name is given as it is, even when it cannot be a key's component (`..`,
    /// empty, a control character): a caller makes a key of it and refuses it then, and no key reaches outside.
    static func childName(_ key: String, under listed: String) -> String? {
        guard key.utf8.starts(with: listed.utf8) else { return nil }
        return String(decoding: key.utf8.dropFirst(listed.utf8.count), as: UTF8.self)
    }

    public func delete(_ key: ObjectKey) throws(StoreError) {
        let name = objectName(key)
        try bucketStep { () throws(S3Error) in try client.deleteObject(bucket: bucket, key: name) }
    }

    public func deleteTree(_ prefix: ObjectKey) throws(StoreError) {
        let listed = listPrefix(prefix)
        var names = [objectName(prefix)]
        var token: String?
        repeat {
            let page = try bucketStep { () throws(S3Error) in
                try client.listObjects(
                    bucket: bucket, prefix: listed, delimiter: nil, continuationToken: token, maxKeys: listPageSize)
            }
            names += page.objects.map(\.key).filter { $0.utf8.starts(with: listed.utf8) }
            token = page.nextContinuationToken
        } while token != nil
        try ThreadFanOut.forEach(names, width: Self.requestsInFlight) { name throws(StoreError) in
            try bucketStep { () throws(S3Error) in try client.deleteObject(bucket: bucket, key: name) }
        }
        // A store on a file system (SeaweedFS) keeps the emptied folders and lists them as prefixes until their
        // own names ("<prefix>/") are deleted, innermost first; S3 has no folders and ignores these deletions.
        for folder in Self.folders(of: names.dropFirst(), under: listed) {
            try bucketStep { () throws(S3Error) in try client.deleteObject(bucket: bucket, key: folder) }
        }
    }

    /// The folder names (ending in `/`) that `names` imply at and under `listed`, innermost first.
    static func folders(of names: some Sequence<String>, under listed: String) -> [String] {
        var folders: Set<String> = [listed]
        for name in names {
            var folder = Substring(name)
            while let slash = folder.dropLast().lastIndex(of: "/"), folder[...slash].utf8.count > listed.utf8.count {
                folder = folder[...slash]
                folders.insert(String(folder))
            }
        }
        return folders.sorted { $0.utf8.count > $1.utf8.count }
    }

    public func storedBytes(of key: ObjectKey) -> UInt64 {
        (try? client.headObject(bucket: bucket, key: objectName(key)))??.size ?? 0
    }

    /// Aborts every multipart upload under `prefix` (ListMultipartUploads by prefix): those of writers never
    /// finished, whose parts take space (and are billed) without being listed.
    public func abortLeftoverUploads(under prefix: ObjectKey) throws(StoreError) -> Int {
        let listed = listPrefix(prefix)
        let uploads = try bucketStep { () throws(S3Error) in
            try client.listMultipartUploads(bucket: bucket, prefix: listed)
        }.filter { $0.key.utf8.starts(with: listed.utf8) }
        try ThreadFanOut.forEach(uploads, width: Self.requestsInFlight) { upload throws(StoreError) in
            try bucketStep { () throws(S3Error) in
                try client.abortMultipartUpload(bucket: bucket, key: upload.key, uploadID: upload.uploadID)
            }
        }
        return uploads.count
    }

    /// Where the object `key` is, for its reader and writers.
    func object(_ key: ObjectKey) -> BucketObject {
        BucketObject(client: client, bucket: bucket, name: objectName(key), location: location(of: key))
    }
}

/// One object of a bucket: what a reader or writer needs to reach it, and its location for messages.
struct BucketObject: Sendable {
    let client: S3Client
    let bucket: String
    let name: String
    let location: String
}
