import Foundation
import TestSupport
import Testing

/// A bucket repository that cannot be used is refused in one line saying what to check, and the secret never
/// appears: wrong keys, a missing bucket, a wrong endpoint, no credentials at all, a plain-HTTP endpoint off this
/// machine, an `s3://` URL that names no bucket. No VM: a SeaweedFS server only.
@Suite("bucket repositories refused in one line (SeaweedFS)")
struct BucketRefusalTests {
    @Test(
        "wrong keys, missing bucket, wrong endpoint, no keys, plain HTTP off loopback (on list, sync, serve and checkpoints; allowed by --allow-http), a bad bucket name",
        .timeLimit(.minutes(2)))
    func refusals() async throws {
        try await Fixture.run { fx in
            let server = try await ObjectStoreServer.start(fx)
            defer { server.stop() }
            let good = server.environment.merging(["HOME": "/nonexistent"]) { $1 }
            let bucketName = "refusals-" + UUID().uuidString.lowercased().prefix(8)
            let binary = try Pullback.binaryPath()
            func pullback(_ environment: [String: String], _ arguments: [String]) async throws -> CommandResult {
                // `env -i`: nothing of the test's own environment (a developer's ~/.aws, AWS_PROFILE) leaks in.
                try await fx.run(
                    ["env", "-i", "PATH=/usr/bin:/bin"]
                        + environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                        + [binary] + arguments, timeout: .seconds(90))
            }
            // pullback never makes a bucket: a missing one is named.
            let missing = try await pullback(good, ["list", "--repo", "s3://\(bucketName)/x"])
            expectCleanFailure(missing, mentioning: [bucketName])
            #expect(!missing.stderr.contains(server.secretAccessKey))

            var wrongSecret = good
            wrongSecret["AWS_SECRET_ACCESS_KEY"] = "not-the-secret-0123456789"
            let denied = try await pullback(wrongSecret, ["list", "--repo", "s3://\(bucketName)/x"])
            expectCleanFailure(denied, mentioning: ["AWS_SECRET_ACCESS_KEY"])
            #expect(!denied.stderr.contains("not-the-secret"))

            var wrongEndpoint = good
            wrongEndpoint["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9"
            let unreachable = try await pullback(wrongEndpoint, ["list", "--repo", "s3://\(bucketName)/x"])
            expectCleanFailure(unreachable, mentioning: ["127.0.0.1:9"])

            let noKeys = try await pullback(
                ["HOME": "/nonexistent", "AWS_ENDPOINT_URL": server.endpointURL],
                ["list", "--repo", "s3://\(bucketName)/x"])
            expectCleanFailure(noKeys, mentioning: ["AWS_ACCESS_KEY_ID"])

            var offLoopback = good
            offLoopback["AWS_ENDPOINT_URL"] = "http://192.0.2.1:8333"
            let plain = try await pullback(offLoopback, ["list", "--repo", "s3://\(bucketName)/x"])
            expectCleanFailure(plain, mentioning: ["--allow-http"])
            // Every command that takes a bucket refuses it alike, and takes --allow-http: then the endpoint is tried.
            let folder = fx.path("folder")
            for arguments in [
                ["sync", "--from", "s3://\(bucketName)/x", "--to", folder],
                ["serve", "--repo", "s3://\(bucketName)/x", "vm", "--socket", fx.path("serve.sock")],
                ["checkpoints", "--repo", "s3://\(bucketName)/x", "vm"],
            ] {
                expectCleanFailure(try await pullback(offLoopback, arguments), mentioning: ["--allow-http"])
            }
            let allowed = try await pullback(
                offLoopback,
                ["sync", "--from", "s3://\(bucketName)/x", "--to", folder, "--allow-http", "--retries", "0"])
            expectCleanFailure(allowed, mentioning: ["192.0.2.1:8333"])
            #expect(!allowed.stderr.contains("--allow-http"), "\(allowed)")

            let badName = try await pullback(good, ["list", "--repo", "s3://Bad_Name/x"])
            expectCleanFailure(badName, mentioning: ["bucket"])
        }
    }
}
