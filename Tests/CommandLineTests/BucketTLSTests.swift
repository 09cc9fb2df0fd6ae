import Foundation
import TestSupport
import Testing

/// A bucket repository on a store that speaks HTTPS only, with a certificate of a private CA (as Ceph RGW or MinIO
/// often are): trusted through `AWS_CA_BUNDLE`, every command works; without the bundle, with another CA's, or with
/// an `http://` URL, the first command fails in one line. No VM: the points come from the fixture repository an
/// earlier build wrote, synced into the bucket.
@Suite("a bucket repository over HTTPS with a private CA (SeaweedFS)")
struct BucketTLSTests {
    static let domain = CopyIntegration.OlderRepositoryTests.domain

    /// A SeaweedFS server whose S3 port speaks HTTPS with a certificate for 127.0.0.1 from a CA made in `fx`, and a
    /// bucket in it.
    static func httpsBucket(_ fx: Fixture) async throws -> TestBucket {
        let certificates = try await TLSCertificates.make(fx)
        let server = certificates.serverDirectory
        let tls = ObjectStoreServer.TLS(
            certificateFile: server + "/server-cert.pem", keyFile: server + "/server-key.pem",
            caBundle: server + "/ca-cert.pem")
        return try await TestBucket.start(fx, tls: tls) { $0.retries = 8 }
    }

    /// `pullback ARGUMENTS` with nothing but `environment` (and `HOME` pointing nowhere): `env -i`, so that nothing of
    /// the test's own environment (a developer's ~/.aws, AWS_CA_BUNDLE, AWS_PROFILE) leaks in.
    static func pullback(_ fx: Fixture, _ environment: [String: String], _ arguments: [String]) async throws
        -> CommandResult
    {
        let variables = environment.merging(["HOME": "/nonexistent"]) { $1 }
        return try await fx.run(
            ["env", "-i", "PATH=/usr/bin:/bin"] + variables.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                + [try Pullback.binaryPath()] + arguments, timeout: .seconds(120))
    }

    @Test(
        "with AWS_CA_BUNDLE: init, sync, list, verify and restore over https://127.0.0.1, the disks identical to a restore from the folder",
        .timeLimit(.minutes(3)))
    func trusted() async throws {
        try await Fixture.run { fx in
            let bucket = try await Self.httpsBucket(fx)
            defer { bucket.server.stop() }
            let environment = bucket.server.environment
            #expect(environment["AWS_ENDPOINT_URL"] == "https://127.0.0.1:\(bucket.server.port)")
            let repo = "s3://\(bucket.name)/hosts/tls"
            let folder = try await CopyIntegration.OlderRepositoryTests.copyOfFixture(fx)

            try requireSuccess(try await Self.pullback(fx, environment, ["init", "--repo", repo]))
            #expect(try await bucket.keys(under: "hosts/tls/").keys.sorted() == ["hosts/tls/repository.json"])
            let synced = try await Self.pullback(fx, environment, ["sync", "--from", folder, "--to", repo, "--json"])
            try requireSuccess(synced)
            #expect(try CopyIntegration.BucketRepositoryTests.syncedBytes(synced) > 0, "\(synced.stdout)")

            // The bucket lists and verifies as the folder does.
            for command in [["list", "--json"], ["verify", Self.domain, "--at", "all"]] {
                let fromBucket = try await Self.pullback(fx, environment, command + ["--repo", repo])
                try requireSuccess(fromBucket)
                let fromFolder = try await Pullback.run(fx, command + ["--repo", folder])
                try requireSuccess(fromFolder)
                #expect(fromBucket.stdout == fromFolder.stdout, "\(command[0]): \(fromBucket) \(fromFolder)")
            }

            let reference = fx.target("reference")
            try requireSuccess(
                try await Pullback.run(
                    fx, ["restore", "--repo", folder, Self.domain, "--to", reference, "--format", "raw"]))
            let restored = fx.target("restored")
            try requireSuccess(
                try await Self.pullback(
                    fx, environment, ["restore", "--repo", repo, Self.domain, "--to", restored, "--format", "raw"]))
            try await expectSameFixtureDisks(fx, restored, as: reference)
            await bucket.close()
        }
    }

    @Test(
        "without AWS_CA_BUNDLE, with another CA's, or with http:// to the HTTPS port, init fails in one line, the secret never shown, nothing written",
        .timeLimit(.minutes(2)))
    func untrusted() async throws {
        try await Fixture.run { fx in
            let bucket = try await Self.httpsBucket(fx)
            defer { bucket.server.stop() }
            let trusted = bucket.server.environment
            let repo = "s3://\(bucket.name)/hosts/tls"
            let endpoint = "127.0.0.1:\(bucket.server.port)"
            let otherCA = try await TLSCertificates.make(fx, name: "other-pki")

            var noBundle = trusted
            noBundle["AWS_CA_BUNDLE"] = nil
            var otherBundle = trusted
            otherBundle["AWS_CA_BUNDLE"] = otherCA.clientDirectory + "/ca-cert.pem"
            var plainHTTP = trusted
            plainHTTP["AWS_ENDPOINT_URL"] = "http://" + endpoint
            let headBucket = "pullback: error: S3 HeadBucket s3://\(bucket.name): "
            let tlsFailed = headBucket + "TLS with https://\(endpoint) failed: check AWS_CA_BUNDLE and AWS_ENDPOINT_URL"
            // SeaweedFS (Go's TLS listener) answers a plain request with 400 and no S3 error.
            let plainRefused = headBucket + "HTTP 400: check AWS_ENDPOINT_URL and AWS_REGION"
            for (environment, line) in [(noBundle, tlsFailed), (otherBundle, tlsFailed), (plainHTTP, plainRefused)] {
                let refused = try await Self.pullback(fx, environment, ["init", "--repo", repo, "--retries", "0"])
                expectCleanFailure(refused)
                #expect(refused.stderrLines.map(String.init) == [line], "\(refused)")
                #expect(refused.stdout.isEmpty, "\(refused)")
                #expect(!refused.stderr.contains(bucket.server.secretAccessKey), "\(refused)")
            }
            #expect(try await bucket.keys(under: "hosts/").isEmpty)
            // The same bucket is fine once trusted: what failed was TLS, not the bucket.
            try requireSuccess(try await Self.pullback(fx, trusted, ["init", "--repo", repo]))
            #expect(try await bucket.keys(under: "hosts/").keys.sorted() == ["hosts/tls/repository.json"])
            await bucket.close()
        }
    }
}
