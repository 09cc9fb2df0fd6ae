import S3

extension BucketPlacedObjectWriter {
    func finish(size: UInt64) throws(StoreError) {
        do throws(StoreError) {
            let partCount = try close(size: size)
            if partCount == 1 {
                try putWhole(size: Int(size))
            } else {
                try completeUpload(size: size, partCount: partCount)
            }
        } catch {
            discard()
            throw error
        }
        condition.lock()
        state.finished = true
        condition.unlock()
    }

    func discard() {
        condition.lock()
        guard !state.finished else {
            condition.unlock()
            return
        }
        state.closed = true
        state.failure = state.failure ?? StoreError(.io, "\(object.location) was discarded")
        state.queued.removeAll()
        while state.uploading > 0 { condition.wait() }
        state.buffers.removeAll()
        condition.unlock()
        // After every send has ended: a part sent while the upload is aborted might otherwise be kept.
        guard
            let id = uploadID.withLock({ id in
                defer { id = nil }
                return id
            })
        else { return }
        try? object.client.abortMultipartUpload(bucket: object.bucket, key: object.name, uploadID: id)
    }

    /// Ends the writes once every running send has ended, and returns how many parts an object of `size` bytes has.
    private func close(size: UInt64) throws(StoreError) -> Int {
        condition.lock()
        defer { condition.unlock() }
        precondition(!state.closed, "finish after finish or discard")
        while state.uploading > 0 { condition.wait() }
        if let failure = state.failure { throw failure }
        guard state.end <= size else {
            throw StoreError(.io, "\(object.location) was written up to byte \(state.end), past its size \(size)")
        }
        state.closed = true
        let partCount = max(1, (size + UInt64(partSize) - 1) / UInt64(partSize))
        guard partCount <= BucketStore.maximumPartCount else {
            throw StoreError(
                .io,
                "\(object.location) of \(size) bytes needs \(partCount) parts of \(partSize) bytes, more than one upload can have"
            )
        }
        return Int(partCount)
    }

    /// Sends an object of one part as a single `PutObject` made only if the key is free.
    private func putWhole(size: Int) throws(StoreError) {
        condition.lock()
        let buffer = state.buffers.removeValue(forKey: 0)
        condition.unlock()
        let body = Self.body(of: ReadyPart(index: 0, buffer: buffer, length: size))
        do throws(S3Error) {
            _ = try object.client.putObject(bucket: object.bucket, key: object.name, body: body, ifNoneMatch: true)
        } catch  where error.code == .preconditionFailed {
            throw StoreError(.alreadyExists, "\(object.location) exists already")
        } catch {
            throw StoreError(error)
        }
    }

    /// Sends the parts not sent yet (part 1, parts with gaps, parts never written) and completes the upload in part
    /// order, only if no object has the key by then (`If-None-Match: *`, which S3 and SeaweedFS both honour).
    private func completeUpload(size: UInt64, partCount: Int) throws(StoreError) {
        let parts = try sendRemaining(size: size, partCount: partCount)
        let id = try startedUpload()
        do throws(S3Error) {
            try object.client.completeMultipartUpload(
                bucket: object.bucket, key: object.name, uploadID: id, parts: parts, ifNoneMatch: true)
        } catch  where error.code == .preconditionFailed {
            throw StoreError(.alreadyExists, "\(object.location) exists already")
        } catch {
            throw StoreError(error)
        }
        uploadID.withLock { $0 = nil }
    }

    /// Queues every part of the `partCount` not sent yet, waits for all sends, and returns the parts in order.
    private func sendRemaining(size: UInt64, partCount: Int) throws(StoreError) -> [S3CompletedPart] {
        condition.lock()
        defer { condition.unlock() }
        for index in 0..<partCount where !state.sent.contains(index) {
            let start = UInt64(index) * UInt64(partSize)
            let length = Int(min(UInt64(partSize), size - start))
            enqueue(ReadyPart(index: index, buffer: state.buffers.removeValue(forKey: index), length: length))
        }
        while state.uploading > 0 { condition.wait() }
        if let failure = state.failure { throw failure }
        guard state.etags.count == partCount else {
            throw StoreError(.io, "\(object.location) has \(state.etags.count) parts sent where \(partCount) were due")
        }
        return state.etags.sorted { $0.key < $1.key }.map { S3CompletedPart(partNumber: $0.key + 1, etag: $0.value) }
    }
}
