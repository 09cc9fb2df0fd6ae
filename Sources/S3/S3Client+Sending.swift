import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

extension S3Client {
    /// Bodies up to this size are hashed into the signature; larger ones are sent as `UNSIGNED-PAYLOAD` (the images
    /// carry their own digests, and hashing every part would cost a pass over it).
    static let largestSignedPayload = 1 << 20

    /// Sends `request` until it succeeds, fails for good, or the retries are spent. A 2xx answer, or one of the
    /// request's `accepted` statuses, is returned; anything else is thrown as a one-line `S3Error`.
    func send(_ request: S3Request) throws(S3Error) -> S3Response {
        var attempt = 0
        while true {
            let failure: S3Error
            let retryable: Bool
            switch performOnce(request) {
            case .success(let response):
                if (200..<300).contains(response.status) || request.accepted.contains(response.status) {
                    return response
                }
                let (code, message) = S3Responses.error(Data(response.body.readableBytesView)) ?? ("", "")
                failure = S3Failure.error(for: request, status: response.status, code: code, message: message)
                retryable = S3Failure.isRetryable(status: response.status, code: code)
            case .failure(let transportFailure):
                failure = transportFailure.error
                retryable = transportFailure.retryable
            }
            guard retryable, attempt < configuration.retries else {
                throw attempt == 0 ? failure : failure.afterAttempts(attempt + 1)
            }
            Thread.sleep(forTimeInterval: Self.backoff(attempt: attempt))
            attempt += 1
        }
    }

    /// 100 ms doubling per attempt up to 5 s, with jitter: a random time between half of that and all of it.
    static func backoff(attempt: Int) -> TimeInterval {
        let ceiling = min(5.0, 0.1 * pow(2.0, Double(min(attempt, 16))))
        return Double.random(in: (ceiling / 2)...ceiling)
    }

    private func performOnce(_ request: S3Request) -> Result<S3Response, TransportFailure> {
        let httpRequest: HTTPClient.Request
        do {
            httpRequest = try signedRequest(request)
        } catch {
            let message = "\(request.context): cannot build the request URL: check AWS_ENDPOINT_URL and the key"
            return .failure(TransportFailure(S3Error(.configuration, message, cause: error), retryable: false))
        }
        let accumulator = ResponseAccumulator(request: httpRequest, maxBodySize: request.maxResponseBytes)
        let deadline = NIODeadline.now() + TimeAmount(configuration.requestTimeout)
        do {
            let response = try httpClient.execute(request: httpRequest, delegate: accumulator, deadline: deadline)
                .futureResult.wait()
            return .success(
                S3Response(
                    status: Int(response.status.code), headers: response.headers, body: response.body ?? ByteBuffer()))
        } catch {
            return .failure(TransportFailure(error, request: request, endpoint: configuration.endpoint))
        }
    }

    /// The request with its URL, `host`, `x-amz-date`, `x-amz-content-sha256`, the session token and the signature.
    private func signedRequest(_ request: S3Request) throws -> HTTPClient.Request {
        let endpoint = configuration.endpoint
        let keyPath = request.key.map { "/" + $0 } ?? "/"
        let (host, path) =
            endpoint.pathStyle
            ? (endpoint.authority, "/" + request.bucket + (request.key.map { "/" + $0 } ?? ""))
            : (request.bucket + "." + endpoint.authority, keyPath)
        let payloadHash: String
        if let body = request.body, body.readableBytes > Self.largestSignedPayload {
            payloadHash = "UNSIGNED-PAYLOAD"
        } else {
            payloadHash =
                request.body.map { body in body.withUnsafeReadableBytes { SignatureV4.hexSHA256($0) } }
                ?? SignatureV4.emptyPayloadHash
        }
        var headers = request.headers
        headers += [
            ("host", host), ("x-amz-date", SignatureV4.timestamp(Date())), ("x-amz-content-sha256", payloadHash),
        ]
        if let token = configuration.credentials.sessionToken { headers.append(("x-amz-security-token", token)) }
        let signed = SignatureV4.Request(
            method: request.method, path: path, query: request.query, headers: headers, payloadHash: payloadHash)
        let timestamp = headers.first { $0.name == "x-amz-date" }?.value ?? ""
        headers.append(("authorization", signer.authorization(signed, timestamp: timestamp)))
        let query = request.query.map { URIEncoding.encode($0.name) + "=" + URIEncoding.encode($0.value) }
            .joined(separator: "&")
        let url = "\(endpoint.scheme)://\(host)\(URIEncoding.encodePath(path))" + (query.isEmpty ? "" : "?" + query)
        return try HTTPClient.Request(
            url: url, method: HTTPMethod(rawValue: request.method), headers: HTTPHeaders(headers),
            body: request.body.map { .byteBuffer($0) })
    }
}

/// A failed attempt that got no usable answer: the error it becomes and whether another attempt may help.
struct TransportFailure: Error {
    var error: S3Error
    var retryable: Bool

    init(_ error: S3Error, retryable: Bool) {
        self.error = error
        self.retryable = retryable
    }

    /// Timeouts and lost or refused connections are worth another attempt; TLS failures and oversized answers not.
    init(_ cause: any Error, request: S3Request, endpoint: S3Endpoint) {
        let context = request.context
        if let clientError = cause as? HTTPClientError,
            [.deadlineExceeded, .readTimeout, .writeTimeout].contains(clientError)
        {
            self.init(
                S3Error(
                    .timedOut, "\(context): no answer from \(endpoint) in time: check the network and the store's load",
                    cause: clientError), retryable: true)
        } else if cause is ResponseAccumulator.ResponseTooBigError {
            self.init(
                S3Error(
                    .invalidResponse, "\(context): the store sent more bytes than asked for: check AWS_ENDPOINT_URL"),
                retryable: false)
        } else if cause is NIOSSLError || cause is BoringSSLError {
            self.init(
                S3Error(
                    .unreachable, "\(context): TLS with \(endpoint) failed: check AWS_CA_BUNDLE and AWS_ENDPOINT_URL",
                    cause: SendableDescription(cause)), retryable: false)
        } else {
            self.init(
                S3Error(
                    .unreachable,
                    "\(context): cannot reach \(endpoint) (\(SendableDescription(cause))): check "
                        + "AWS_ENDPOINT_URL and that the store is running", cause: SendableDescription(cause)),
                retryable: true)
        }
    }
}

/// An error that is not `Sendable`, kept as its description.
struct SendableDescription: Error, Sendable, CustomStringConvertible {
    var description: String
    init(_ error: any Error) { description = String(describing: error) }
}

extension S3Error {
    /// The same error, its message saying how many attempts were made.
    func afterAttempts(_ count: Int) -> S3Error {
        var error = S3Error(code, message + " (after \(count) attempts)", status: status, cause: cause)
        error.attempts = count
        return error
    }
}

extension TimeAmount {
    /// `duration` in nanoseconds, saturating.
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        let (nanos, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        self = .nanoseconds(overflow ? Int64.max : nanos.addingReportingOverflow(attoseconds / 1_000_000_000).0)
    }
}
