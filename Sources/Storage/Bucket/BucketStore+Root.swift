import S3

extension BucketStore {
    /// A missing bucket is an error, not ``StoreRootState/absent``: the store never makes buckets, which come with
    /// their own settings (region, retention, who may read them). A prefix with nothing under it is empty.
    public func rootState() throws(StoreError) -> StoreRootState {
        try bucketStep { () throws(S3Error) in try client.headBucket(bucket) }
        let page = try bucketStep { () throws(S3Error) in
            try client.listObjects(
                bucket: bucket, prefix: listPrefix(nil), delimiter: nil, continuationToken: nil, maxKeys: 1)
        }
        return page.objects.isEmpty && page.commonPrefixes.isEmpty ? .empty(temporaries: []) : .populated
    }

    /// Checks that the bucket is there: a prefix needs nothing made.
    public func createRoot() throws(StoreError) {
        try bucketStep { () throws(S3Error) in try client.headBucket(bucket) }
    }

    /// A bucket's objects have no modes: who may read them is the bucket's policy.
    public func makePrivate(_ prefix: ObjectKey?, depth: Int) -> Int {
        0
    }
}
