import S3

/// A bucket replaces an object by a server-side copy (CopyObject, or UploadPartCopy past 5 GiB), which S3 makes
/// visible in one step, as it does a PutObject.
extension BucketStore {
    public func copy(_ source: ObjectKey, replacing target: ObjectKey) throws(StoreError) {
        let sourceName = objectName(source)
        let targetName = objectName(target)
        guard
            let head = try bucketStep({ () throws(S3Error) in try client.headObject(bucket: bucket, key: sourceName) })
        else {
            throw StoreError(
                .notAnObject, "\(location(of: source)) is not there to be copied to \(location(of: target))")
        }
        _ = try bucketStep { () throws(S3Error) in
            try client.copyObject(bucket: bucket, sourceKey: sourceName, sourceSize: head.size, to: targetName)
        }
    }
}
