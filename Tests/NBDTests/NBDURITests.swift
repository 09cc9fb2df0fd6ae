import Foundation
import NBD
import Testing

@Suite("NBD URIs as libnbd reads them")
struct NBDURITests {
    @Test("every transport and parameter is built as text and read back the same")
    func roundTrips() throws {
        let uris: [(NBDURI, String)] = [
            (NBDURI(.tcp(host: "example.com", port: nil)), "nbd://example.com/"),
            (NBDURI(.tcp(host: "10.0.0.1", port: 10810), exportName: "vda"), "nbd://10.0.0.1:10810/vda"),
            (
                NBDURI(.tcp(host: "::1", port: 10809), requiresTLS: true, exportName: "vda", tlsCertificates: "/pki"),
                "nbds://[::1]:10809/vda?tls-certificates=/pki"
            ),
            (NBDURI(.unix(socket: "/run/x.sock"), exportName: "vda"), "nbd+unix:///vda?socket=/run/x.sock"),
            (
                NBDURI(
                    .unix(socket: "/s"), requiresTLS: true, user: "alice", tlsPSKFile: "/k.psk", tlsUsername: "alice",
                    tlsHostname: "backup.example"),
                "nbds+unix://alice@/?socket=/s&tls-psk-file=/k.psk&tls-username=alice&tls-hostname=backup.example"
            ),
            (NBDURI(.vsock(cid: 2, port: 10809), exportName: "x"), "nbd+vsock://2:10809/x"),
            (NBDURI(.tcp(host: "h", port: nil), exportName: "/disk"), "nbd://h//disk"),
        ]
        for (uri, text) in uris {
            #expect(uri.description == text)
            #expect(try NBDURI(parsing: text) == uri, "\(text)")
        }
    }

    @Test("spaces, ?, &, %, + and = in an export name or a socket path are percent-encoded and decoded back")
    func escaping() throws {
        let uri = NBDURI(.unix(socket: "/tmp/a b?c&d=e%f+g/nbd.sock"), exportName: "disk one?x&y=%z+/w")
        let text = uri.description
        #expect(
            text == "nbd+unix:///disk%20one%3Fx%26y%3D%25z%2B/w?socket=/tmp/a%20b%3Fc%26d%3De%25f%2Bg/nbd.sock")
        #expect(try NBDURI(parsing: text) == uri)
        // The specification's own example, and a plus that stays a plus.
        #expect(try NBDURI(parsing: "nbd://example.com/hello%20world").exportName == "hello world")
        #expect(try NBDURI(parsing: "nbd+unix:///a+b?socket=/s+t").exportName == "a+b")
        #expect(try NBDURI(parsing: "nbd+unix:///?socket=/s+t").transport == .unix(socket: "/s+t"))
        // Unicode goes as UTF-8 bytes.
        #expect(NBDURI(.tcp(host: "h", port: nil), exportName: "é").description == "nbd://h/%C3%A9")
    }

    @Test("what libnbd would refuse or read differently is refused with one line saying what is wrong")
    func refusals() {
        let refused: [(String, String)] = [
            ("http://example.com/", "it must start with nbd://"),
            ("NBD://example.com/", "it must start with nbd://"),
            ("nbd+unix:///a b?socket=/s", "\" \" must be percent-encoded"),
            ("nbd://h/a#b", "\"#\" must be percent-encoded"),
            ("nbd://h/%zz", "bad %-escape"),
            ("nbd://h/%00", "bad %-escape or a NUL"),
            ("nbd+unix:///vda", "nbd+unix:// needs socket=PATH"),
            ("nbd+unix://host/?socket=/s", "takes no host or port"),
            ("nbd://h/?socket=/s", "socket= is for nbd+unix://"),
            ("nbd:///vda", "nbd:// needs a host"),
            ("nbd://h:0/", "port must be a number from 1 to 65535"),
            ("nbd://h:65536/", "port must be a number from 1 to 65535"),
            ("nbd://h:+1/", "port must be a number from 1 to 65535"),
            ("nbd://[::1/", "lacks its ]"),
            ("nbd+vsock://host/", "numeric context id"),
            ("nbd+unix:///?socket=/s&socket=/t", "socket= is given twice"),
            ("nbd+unix:///?socket=/s&tls-verify=1", "libnbd does not read \"tls-verify\"="),
            ("nbd+unix:///?socket", "is not NAME=VALUE"),
            ("nbd://h/\u{1b}[2J", "\"\\u{1b}\" must be percent-encoded"),
        ]
        for (text, reason) in refused {
            #expect {
                try NBDURI(parsing: text)
            } throws: { error in
                guard let error = error as? NBDError else { return false }
                let line = error.message
                return error.code == .invalidArgument && line.contains(reason) && !line.contains("\n")
                    && !line.contains("\u{1b}")
            }
        }
    }
}
