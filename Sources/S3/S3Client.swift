import AsyncHTTPClient
import Foundation
import NIOCore
import NIOSSL
import Synchronization
import UntrustedText

/// An S3 client over one shared `HTTPClient` (a pool of up to 16 connections to the store).
///
/// Every method BLOCKS the calling thread until the call has succeeded or failed for good: it runs AsyncHTTPClient's
/// `EventLoopFuture` API and waits. Call it from a thread of your own or a blocking-work pool, never from Swift's
/// cooperative pool (blocking it while a task finishes the request could deadlock a 2-core pool) and never from a NIO
/// event loop. Failures worth retrying (5xx, 429 and SlowDown, timeouts, lost connections) are retried inside each
/// call with exponential backoff, up to `configuration.retries` times; other 4xx fail at once.
public final class S3Client: Sendable {
    /// What the client was made with.
    public let configuration: S3Configuration
    let httpClient: HTTPClient
    let signer: SignatureV4
    private let isShutDown = Mutex(false)

    /// A client for the store `configuration` describes. Throws when the CA bundle cannot be read.
    public init(_ configuration: S3Configuration) throws(S3Error) {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let path = configuration.caBundlePath {
            let message = "cannot read the certificates in \(UntrustedText.escaped(path)): check AWS_CA_BUNDLE"
            let certificates: [NIOSSLCertificate]
            do {
                certificates = try NIOSSLCertificate.fromPEMFile(path)
            } catch {
                throw S3Error(.configuration, message, cause: SendableDescription(error))
            }
            // A file without a single certificate would make every TLS connection fail later, less clearly.
            guard !certificates.isEmpty else { throw S3Error(.configuration, message) }
            tls.trustRoots = .certificates(certificates)
        }
        var httpConfiguration = HTTPClient.Configuration(
            tlsConfiguration: tls, redirectConfiguration: .disallow,
            timeout: .init(connect: TimeAmount(configuration.connectTimeout)),
            connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 16),
            decompression: .disabled)
        httpConfiguration.httpVersion = .http1Only
        // A refused or failed connect fails the attempt at once, for the client's own retries and backoff to count;
        // AHC's pool would otherwise retry the connect by itself until the connect timeout, per attempt.
        httpConfiguration.connectionPool.retryConnectionEstablishment = false
        self.configuration = configuration
        self.httpClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: httpConfiguration)
        self.signer = SignatureV4(
            accessKeyID: configuration.credentials.accessKeyID,
            secretAccessKey: configuration.credentials.secretAccessKey, region: configuration.region, service: "s3")
    }

    /// Closes the connections; blocks until the HTTP client is shut down. No call may follow.
    public func shutdown() {
        guard markShutDown() else { return }
        try? httpClient.syncShutdown()
    }

    /// A client dropped without `shutdown()` (a caller that threw on the way) still closes its connections, in the
    /// background: AsyncHTTPClient would otherwise end the process.
    deinit {
        guard markShutDown() else { return }
        httpClient.shutdown(queue: .global()) { _ in }
    }

    private func markShutDown() -> Bool {
        isShutDown.withLock { done in
            defer { done = true }
            return !done
        }
    }

    /// Creates the bucket (in the configured region); `.badRequest` with S3's code when it exists already.
    public func createBucket(_ bucket: String) throws(S3Error) {
        var request = S3Request(operation: "CreateBucket", method: "PUT", bucket: bucket, key: nil)
        if configuration.region != "us-east-1" {
            request.body = ByteBuffer(
                string: "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                    + "<LocationConstraint>\(XMLEscaping.escape(configuration.region))</LocationConstraint>"
                    + "</CreateBucketConfiguration>")
        }
        _ = try send(request)
    }

    /// Succeeds when the bucket exists and the keys may use it: `.noSuchBucket`, `.accessDenied`, ... otherwise.
    public func headBucket(_ bucket: String) throws(S3Error) {
        let request = S3Request(operation: "HeadBucket", method: "HEAD", bucket: bucket, key: nil, accepted: [404])
        let response = try send(request)
        if response.status == 404 {
            throw S3Failure.error(for: request, status: 404, code: "NoSuchBucket", message: "")
        }
    }

    /// The object's size and entity tag; nil when there is no such object.
    public func headObject(bucket: String, key: String) throws(S3Error) -> S3ObjectHead? {
        let request = S3Request(operation: "HeadObject", method: "HEAD", bucket: bucket, key: key, accepted: [404])
        let response = try send(request)
        if response.status == 404 { return nil }
        let size = try S3Responses.size(response.headers.first(name: "content-length"), context: request.context)
        return S3ObjectHead(size: size, etag: try response.etag(request))
    }

    /// The object's bytes, or those in `range` (offsets in the object). `.noSuchKey` when there is no such object.
    /// Without a range at most 2 GiB are accepted.
    public func getObject(bucket: String, key: String, range: Range<UInt64>?) throws(S3Error) -> ByteBuffer {
        var request = S3Request(operation: "GetObject", method: "GET", bucket: bucket, key: key)
        request.maxResponseBytes = 1 << 31
        if let range {
            guard !range.isEmpty else { return ByteBuffer() }
            guard range.count <= UInt64(request.maxResponseBytes), range.upperBound <= UInt64(Int64.max) else {
                throw S3Error(.badRequest, "\(request.context): range \(range) is over 2 GiB or past 2^63")
            }
            request.headers.append(("range", "bytes=\(range.lowerBound)-\(range.upperBound - 1)"))
            request.maxResponseBytes = Int(range.count)
        }
        let response = try send(request)
        if let range { try response.checkRange(range, request) }
        return response.body
    }

    /// Stores `body` as the object and returns its entity tag. `ifNoneMatch` creates it only if absent, `ifMatch`
    /// replaces it only if its entity tag is that; `.preconditionFailed` when the condition does not hold.
    @discardableResult
    public func putObject(
        bucket: String, key: String, body: ByteBuffer, ifNoneMatch: Bool = false, ifMatch: String? = nil
    ) throws(S3Error) -> String {
        var request = S3Request(operation: "PutObject", method: "PUT", bucket: bucket, key: key, body: body)
        if ifNoneMatch { request.headers.append(("if-none-match", "*")) }
        if let ifMatch { request.headers.append(("if-match", ifMatch)) }
        do {
            return try send(request).etag(request)
        } catch  where error.code == .preconditionFailed && error.attempts > 1 {
            // An earlier attempt may have written the object and lost its answer: then the object is ours.
            let expected = ConditionalWriteCheck.singlePartETag(body)
            guard let head = try headObject(bucket: bucket, key: key), head.etag == expected else { throw error }
            return head.etag
        }
    }

    /// Deletes the object; no such object is success too. With `ifMatch`, only while its entity tag is that
    /// (`.preconditionFailed` otherwise; SeaweedFS 4.48 and AWS honour it).
    public func deleteObject(bucket: String, key: String, ifMatch: String? = nil) throws(S3Error) {
        var request = S3Request(operation: "DeleteObject", method: "DELETE", bucket: bucket, key: key, accepted: [404])
        if let ifMatch { request.headers.append(("if-match", ifMatch)) }
        try send(request).failOnMissingBucket(request)
    }

    /// One page of the keys under `prefix` (ListObjectsV2), rolled up at `delimiter` when given; pass the page's
    /// `nextContinuationToken` back for the next one.
    public func listObjects(
        bucket: String, prefix: String, delimiter: String?, continuationToken: String?, maxKeys: Int = 1000
    ) throws(S3Error) -> S3ListPage {
        var request = S3Request(operation: "ListObjectsV2", method: "GET", bucket: bucket, key: nil)
        request.query = [
            ("list-type", "2"), ("prefix", prefix), ("max-keys", String(max(1, min(maxKeys, 1000)))),
            ("encoding-type", "url"),
        ]
        if let delimiter { request.query.append(("delimiter", delimiter)) }
        if let continuationToken { request.query.append(("continuation-token", continuationToken)) }
        let response = try send(request)
        return try S3Responses.listPage(Data(response.body.readableBytesView), context: request.context)
    }
}
