import Foundation
import NIOCore
import S3
import Synchronization

/// A new object of a ``BucketStore`` written at offsets: a multipart upload whose parts are sent as they fill, with
/// bounded memory whatever the object's size.
///
/// Part 1 (the qcow2 header's cluster, written last) stays in memory until ``finish(size:)``. Every other part is
/// queued for upload once all its bytes were written (the writer counts them; each byte is written once) and sent
/// by at most ``uploadsInFlight`` threads of the writer's own. A write that needs a new part while
/// ``partsBuffered`` parts wait in memory blocks until an upload ends, so memory stays near
/// (``partsBuffered`` + ``uploadsInFlight`` + 1) parts. It never waits when no upload runs (the parts in memory are
/// all incomplete, and only more writes can complete them): a writer that scatters its writes over the whole object
/// then holds more, rather than waiting forever.
///
/// ``finish(size:)`` sends what is left (zeros where nothing was written) and completes the upload in part order.
/// An object of one part is sent with a single `PutObject` instead, and no upload is ever started for it. Any
/// failure, and ``discard()``, aborts the upload, so nothing of it is listed or kept.
final class BucketPlacedObjectWriter: PlacedObjectWriter, @unchecked Sendable {  // `state` only with `condition` held
    /// How many parts may wait in memory (being written or queued) before a write waits.
    static let partsBuffered = 8
    /// How many parts are sent at once.
    static let uploadsInFlight = 4

    /// A part ready to send: its bytes (nil for a part never written: zeros) and its length.
    struct ReadyPart {
        let index: Int
        let buffer: PartBuffer?
        let length: Int
    }

    struct State {
        /// Parts being written (part 0 until finish).
        var buffers: [Int: PartBuffer] = [:]
        /// Parts ready, waiting for an upload thread.
        var queued: [ReadyPart] = []
        /// Parts queued, being sent or sent: never written again.
        var sent: Set<Int> = []
        /// Upload threads running.
        var uploading = 0
        /// The entity tags of the parts sent, by part index.
        var etags: [Int: String] = [:]
        /// The end of the furthest byte written.
        var end: UInt64 = 0
        /// The first failure, or why the writer stopped: no more parts are sent after it.
        var failure: StoreError?
        /// Finished or discarded: no more writes.
        var closed = false
        /// Finished: the object is complete, nothing is left to abort.
        var finished = false

        /// Parts in memory that no upload has taken yet, part 0 aside.
        var waitingInMemory: Int { buffers.count - (buffers[0] == nil ? 0 : 1) + queued.count }
    }

    let object: BucketObject
    let partSize: Int
    let condition = NSCondition()
    var state = State()
    /// The multipart upload, started when the first part is sent.
    let uploadID = Mutex<String?>(nil)

    init(object: BucketObject, partSize: Int) {
        self.object = object
        self.partSize = partSize
    }

    deinit {
        discard()
    }

    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(StoreError) {
        var done = 0
        while done < bytes.count {
            let position = offset + UInt64(done)
            let index = Int(position / UInt64(partSize))
            let within = Int(position % UInt64(partSize))
            let length = min(bytes.count - done, partSize - within)
            let buffer = try buffer(forPart: index)
            // Outside the lock: writers fill different ranges of a part at once.
            (buffer.bytes.baseAddress! + within).copyMemory(from: bytes.baseAddress! + done, byteCount: length)
            counted(length, inPart: index, of: buffer, end: position + UInt64(length))
            done += length
        }
    }

    /// The buffer of part `index`, made when it is the part's first write (after waiting while too many parts are in
    /// memory and an upload is running).
    private func buffer(forPart index: Int) throws(StoreError) -> PartBuffer {
        guard index < BucketStore.maximumPartCount else {
            throw StoreError(
                .io,
                "\(object.location) grew past \(BucketStore.maximumPartCount) parts of \(partSize) bytes, more than one upload can have"
            )
        }
        condition.lock()
        defer { condition.unlock() }
        while true {
            if let failure = state.failure { throw failure }
            precondition(!state.closed, "write after finish or discard")
            if let buffer = state.buffers[index] { return buffer }
            guard !state.sent.contains(index) else {
                throw StoreError(.io, "part \(index + 1) of \(object.location) was written after it was complete")
            }
            if index == 0 || state.waitingInMemory < Self.partsBuffered || state.uploading == 0 {
                let buffer = PartBuffer(size: partSize)
                state.buffers[index] = buffer
                return buffer
            }
            condition.wait()
        }
    }

    /// Returns once no part is being sent or waits to be; throws the first failure of a send.
    func sendsEnded() throws(StoreError) {
        condition.lock()
        defer { condition.unlock() }
        while state.uploading > 0 { condition.wait() }
        if let failure = state.failure { throw failure }
    }

    /// Counts `length` bytes written into part `index`, and queues the part for upload once it is complete.
    private func counted(_ length: Int, inPart index: Int, of buffer: PartBuffer, end: UInt64) {
        condition.lock()
        defer { condition.unlock() }
        buffer.written += length
        state.end = max(state.end, end)
        guard index != 0, buffer.written >= partSize, state.failure == nil else { return }
        state.buffers[index] = nil
        enqueue(ReadyPart(index: index, buffer: buffer, length: partSize))
    }

    /// Queues `part` and starts an upload thread for it if fewer than ``uploadsInFlight`` run. Under the lock.
    func enqueue(_ part: ReadyPart) {
        state.sent.insert(part.index)
        state.queued.append(part)
        guard state.uploading < Self.uploadsInFlight else { return }
        state.uploading += 1
        let thread = Thread { [self] in sendQueuedParts() }
        thread.name = "part-upload"
        thread.start()
    }

    /// An upload thread: sends queued parts until none is left or a send failed.
    private func sendQueuedParts() {
        while let (index, body) = takeQueuedPart() {
            let result = Result { () throws(StoreError) in try send(body, as: index) }
            condition.lock()
            switch result {
            case .success(let etag): state.etags[index] = etag
            case .failure(let error): state.failure = state.failure ?? error
            }
            condition.broadcast()
            condition.unlock()
        }
    }

    /// The next queued part's index and its bytes copied out of its buffer, which is freed on return rather than
    /// after the send; nil when no part is queued or a send failed, and the thread then ends.
    private func takeQueuedPart() -> (index: Int, body: ByteBuffer)? {
        condition.lock()
        if state.failure != nil { state.queued.removeAll() }
        guard !state.queued.isEmpty else {
            state.uploading -= 1
            condition.broadcast()
            condition.unlock()
            return nil
        }
        let part = state.queued.removeFirst()
        condition.unlock()
        return (part.index, Self.body(of: part))
    }

    /// Sends `body` as the part `index` of the upload (started now if this is the first) and returns its entity
    /// tag.
    private func send(_ body: ByteBuffer, as index: Int) throws(StoreError) -> String {
        let id = try startedUpload()
        return try bucketStep { () throws(S3Error) in
            try object.client.uploadPart(
                bucket: object.bucket, key: object.name, uploadID: id, partNumber: index + 1, body: body)
        }
    }

    /// The multipart upload's id, after starting it if no part was sent yet.
    func startedUpload() throws(StoreError) -> String {
        try uploadID.withLock { id throws(StoreError) -> String in
            if let id { return id }
            let started = try bucketStep { () throws(S3Error) in
                try object.client.createMultipartUpload(bucket: object.bucket, key: object.name)
            }
            id = started
            return started
        }
    }

    /// The bytes of `part` to send.
    static func body(of part: ReadyPart) -> ByteBuffer {
        guard let buffer = part.buffer else { return ByteBuffer(repeating: 0, count: part.length) }
        return ByteBuffer(bytes: UnsafeRawBufferPointer(rebasing: buffer.bytes[0..<part.length]))
    }
}
