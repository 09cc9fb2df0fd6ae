import Foundation
import Testing

@testable import S3

/// The XML documents, parsed with XMLParser: listings with url-encoded keys, pages, uploads, error bodies, and the
/// numbers a hostile store could send (sizes past 2^63, signs, text), refused in one line instead of trapping.
@Suite struct S3ResponsesTests {
    static let context = "S3 ListObjectsV2 s3://b"

    static func listing(_ contents: String, truncated: Bool = false, token: String? = nil) -> Data {
        Data(
            ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                + "<Name>b</Name><EncodingType>url</EncodingType><IsTruncated>\(truncated)</IsTruncated>"
                + (token.map { "<NextContinuationToken>\($0)</NextContinuationToken>" } ?? "") + contents
                + "</ListBucketResult>").utf8)
    }

    @Test func listingDecodesKeysAndPrefixes() throws {
        let page = try S3Responses.listPage(
            Self.listing(
                "<Contents><Key>p/a+b%2Bc%E1%88%B4</Key><Size>9223372036854775807</Size><ETag>\"x\"</ETag></Contents>"
                    + "<Contents><Key>p/%26amp</Key><Size>0</Size></Contents>"
                    + "<CommonPrefixes><Prefix>p/d%20ir/</Prefix></CommonPrefixes>", truncated: true, token: "t&amp;1"),
            context: Self.context)
        #expect(
            page.objects == [
                S3ListedObject(key: "p/a b+cሴ", size: UInt64(Int64.max)), S3ListedObject(key: "p/&amp", size: 0),
            ])
        #expect(page.commonPrefixes == ["p/d ir/"])
        #expect(page.nextContinuationToken == "t&1")
    }

    @Test(arguments: ["9223372036854775808", "18446744073709551616", "-1", "+5", "1e3", "", " 1", "0x10"])
    func hostileSizesAreRefused(_ size: String) {
        let error = #expect(throws: S3Error.self) {
            try S3Responses.listPage(
                Self.listing("<Contents><Key>k</Key><Size>\(size)</Size></Contents>"), context: Self.context)
        }
        #expect(error?.code == .invalidResponse)
        #expect(error?.message.hasPrefix("S3 ListObjectsV2 s3://b: the store answered with size ") == true)
        #expect(error?.message.hasSuffix(" is not a number up to 2^63-1: check AWS_ENDPOINT_URL") == true)
    }

    @Test func malformedDocumentsAreRefused() {
        let cases: [Data] = [
            Data("not xml".utf8), Data("<Error><Code>X</Code></Error>".utf8), Self.listing("", truncated: true),
            Self.listing("<Contents><Size>1</Size></Contents>"), Data("<ListBucketResult><Contents>".utf8),
        ]
        for data in cases {
            let error = #expect(throws: S3Error.self) { try S3Responses.listPage(data, context: Self.context) }
            #expect(error?.code == .invalidResponse)
            #expect(error?.message.contains("\n") == false)
        }
    }

    @Test func uploadsPagesAndUploadID() throws {
        let page = try S3Responses.uploadsPage(
            Data(
                ("<ListMultipartUploadsResult><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>"
                    + "<NextKeyMarker>k%202</NextKeyMarker><NextUploadIdMarker>u2</NextUploadIdMarker>"
                    + "<Upload><Key>k%201</Key><UploadId>u1</UploadId><Initiated>2026-12-05T09:00:00.000Z</Initiated>"
                    + "</Upload><Upload><Key>k%202</Key><UploadId>u2</UploadId></Upload></ListMultipartUploadsResult>")
                    .utf8), context: "c")
        #expect(page.uploads.map(\.key) == ["k 1", "k 2"])
        #expect(page.uploads.map(\.uploadID) == ["u1", "u2"])
        #expect(page.uploads[0].initiated == Date(timeIntervalSince1970: 1_796_461_200))
        #expect(page.uploads[1].initiated == nil)
        #expect(page.next?.keyMarker == "k 2")
        #expect(page.next?.uploadIDMarker == "u2")
        #expect(
            try S3Responses.uploadID(
                Data(
                    "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>abc</UploadId></InitiateMultipartUploadResult>"
                        .utf8), context: "c") == "abc")
    }

    @Test func errorBodies() {
        let parsed = S3Responses.error(
            Data("<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>Please &amp; slow</Message></Error>".utf8)
        )
        #expect(parsed?.code == "SlowDown")
        #expect(parsed?.message == "Please & slow")
        #expect(S3Responses.error(Data()) == nil)
        #expect(S3Responses.error(Data("<CompleteMultipartUploadResult/>".utf8)) == nil)
    }

    @Test func completeBodyIsSortedAndEscaped() {
        let body = S3Responses.completeBody([
            S3CompletedPart(partNumber: 2, etag: "\"b<&>\""), S3CompletedPart(partNumber: 1, etag: "\"a\""),
        ])
        #expect(
            body
                == "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Part><PartNumber>1"
                + "</PartNumber><ETag>&quot;a&quot;</ETag></Part><Part><PartNumber>2</PartNumber><ETag>&quot;b&lt;&amp;"
                + "&gt;&quot;</ETag></Part></CompleteMultipartUpload>")
    }
}
