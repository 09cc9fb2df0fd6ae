import Repository
import Testing

/// `--repo s3://BUCKET/PREFIX` as a bucket and a prefix: S3's bucket name rules, prefixes of valid names only, and
/// anything else refused in one line naming the location.
@Suite("BucketAddress")
struct BucketAddressTests {
    @Test(
        "bucket and prefix",
        arguments: [
            ("s3://backups", "backups", nil), ("s3://backups/", "backups", nil),
            ("s3://my.bucket-1/host/vms", "my.bucket-1", "host/vms"), ("S3://abc/x/", "abc", "x"),
        ] as [(String, String, String?)])
    func parsed(location: String, bucket: String, prefix: String?) throws {
        let address = try #require(try BucketAddress.parse(location))
        #expect(address.bucket == bucket && address.prefix?.description == prefix)
        #expect(address.url == "s3://" + bucket + (prefix.map { "/" + $0 } ?? ""))
    }

    @Test("a path or another scheme is no bucket", arguments: ["/srv/backups", "backups", "sftp://h/x", "s3:/x/y"])
    func notABucket(location: String) throws {
        #expect(try BucketAddress.parse(location) == nil)
    }

    @Test(
        "refused in one line",
        arguments: [
            "s3://", "s3://ab", "s3://Backups", "s3://-abc", "s3://abc-", "s3://a..b", "s3://a_b/x",
            "s3://" + String(repeating: "a", count: 64),
            "s3://abc/x/../y", "s3://abc/x//y", "s3://abc/./x", "s3://abc/x\u{1}y",
        ])
    func refused(location: String) {
        let error = #expect(throws: RepositoryError.self) { try BucketAddress.parse(location) }
        #expect(error?.code == .invalidName, "\(location)")
        #expect(error?.message.contains("\n") == false)
    }
}
