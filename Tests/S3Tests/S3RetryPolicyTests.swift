import Testing

@testable import S3

/// Which answers are tried again and how long between tries: 100 ms doubling up to 5 s, with jitter in the upper
/// half; 5xx, 429, SlowDown and RequestTimeout retried, other 4xx not.
@Suite struct S3RetryPolicyTests {
    @Test func backoffDoublesUpToFiveSeconds() {
        let ceilings = [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0]
        for (attempt, ceiling) in ceilings.enumerated() {
            for _ in 0..<50 {
                let delay = S3Client.backoff(attempt: attempt)
                #expect(delay >= ceiling / 2 && delay <= ceiling, "attempt \(attempt): \(delay)")
            }
        }
        #expect(S3Client.backoff(attempt: 1_000) <= 5.0)
    }

    @Test func retryableAnswers() {
        #expect(S3Failure.isRetryable(status: 500, code: "InternalError"))
        #expect(S3Failure.isRetryable(status: 503, code: "SlowDown"))
        #expect(S3Failure.isRetryable(status: 429, code: ""))
        #expect(S3Failure.isRetryable(status: 400, code: "RequestTimeout"))
        #expect(!S3Failure.isRetryable(status: 403, code: "AccessDenied"))
        #expect(!S3Failure.isRetryable(status: 404, code: "NoSuchKey"))
        #expect(!S3Failure.isRetryable(status: 412, code: "PreconditionFailed"))
        #expect(!S3Failure.isRetryable(status: 400, code: "InvalidArgument"))
    }

    @Test func codesAndHints() {
        let request = S3Request(operation: "GetObject", method: "GET", bucket: "b", key: "k\u{1b}[2J")
        let cases: [(Int, String, S3Error.Code, String)] = [
            (403, "InvalidAccessKeyId", .accessDenied, "check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"),
            (404, "NoSuchBucket", .noSuchBucket, "check the bucket name and AWS_REGION"),
            (301, "PermanentRedirect", .badRequest, "check AWS_REGION"),
            (503, "SlowDown", .throttled, "try again later"),
            (502, "", .server, "check its health"),
            (400, "InvalidArgument", .badRequest, "check AWS_ENDPOINT_URL"),
        ]
        for (status, code, expected, hint) in cases {
            let error = S3Failure.error(for: request, status: status, code: code, message: "line one\nline two")
            #expect(error.code == expected)
            #expect(error.status == status)
            #expect(error.message.contains(hint))
            #expect(error.message.hasPrefix("S3 GetObject s3://b/k\\u{1b}[2J: HTTP \(status)"))
            #expect(!error.message.contains("\n"))
        }
    }
}
