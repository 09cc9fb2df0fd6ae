import Foundation
import UntrustedText

/// How a failed attempt is turned into an `S3Error`, and whether it is worth another attempt.
enum S3Failure {
    /// The error for an answer with `status` and S3 error `code`: the code and the hint follow from both.
    static func error(for request: S3Request, status: Int, code: String, message: String) -> S3Error {
        let (errorCode, hint) = classify(status: status, code: code, request: request)
        var text = "\(request.context): HTTP \(status)"
        if !code.isEmpty { text += " \(UntrustedText.escaped(String(code.prefix(64))))" }
        if !message.isEmpty { text += " \(UntrustedText.quoted(message))" }
        return S3Error(errorCode, text + ": " + hint, status: status)
    }

    /// True for answers that may succeed when tried again: 5xx, 429, SlowDown, RequestTimeout.
    static func isRetryable(status: Int, code: String) -> Bool {
        status >= 500 || status == 429 || code == "SlowDown" || code == "RequestTimeout"
            || code == "InternalError" || code == "ServiceUnavailable"
    }

    private static func classify(status: Int, code: String, request: S3Request) -> (S3Error.Code, String) {
        switch (status, code) {
        case (_, "NoSuchBucket"):
            return (.noSuchBucket, "check the bucket name and AWS_REGION")
        case (_, "NoSuchKey"):
            return (.noSuchKey, "the object does not exist: check the key")
        case (_, "NoSuchUpload"):
            return (.noSuchKey, "the upload was completed or aborted already")
        case (_, "RequestTimeTooSkewed"):
            return (.badRequest, "this host's clock is off: check its time synchronisation")
        case (412, _), (_, "PreconditionFailed"):
            return (.preconditionFailed, "the object changed or exists already: another writer got there first")
        case (403, _), (_, "AccessDenied"), (_, "InvalidAccessKeyId"), (_, "SignatureDoesNotMatch"):
            return (.accessDenied, "check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and the bucket's permissions")
        case (301, _), (_, "PermanentRedirect"), (_, "AuthorizationHeaderMalformed"), (_, "IllegalLocationConstraint"):
            return (.badRequest, "the bucket is in another region: check AWS_REGION")
        case (429, _), (_, "SlowDown"):
            return (.throttled, "the store is throttling requests: try again later or lower the concurrency")
        case (500..., _):
            return (.server, "the store failed: check its health and logs")
        case (404, _):
            return (.noSuchKey, "check the bucket name, the key and AWS_ENDPOINT_URL")
        default:
            return (.badRequest, "check AWS_ENDPOINT_URL and AWS_REGION")
        }
    }
}
