import Testing

@testable import Backup

@Suite("The NBD URIs of a backup's exports")
struct ExportAddressTests {
    @Test("a socket path and a target with characters a URI cannot carry as they are come percent-encoded")
    func escapedParts() {
        #expect(
            ExportAddress.unixSocket("/tmp/pullback-x/nbd.sock").uri(of: "vda")
                == "nbd+unix:///vda?socket=/tmp/pullback-x/nbd.sock")
        #expect(
            ExportAddress.unixSocket("/srv/my backups/run?1&x=%/nbd.sock").uri(of: "vda")
                == "nbd+unix:///vda?socket=/srv/my%20backups/run%3F1%26x%3D%25/nbd.sock")
        #expect(
            ExportAddress.tcp(host: "hv1.example", port: 10809, certificates: "/etc/pki/pull back").uri(of: "vd a")
                == "nbds://hv1.example:10809/vd%20a?tls-certificates=/etc/pki/pull%20back")
        #expect(
            ExportAddress.tcp(host: "fd00::1", port: 10810, certificates: nil).uri(of: "") == "nbd://[fd00::1]:10810/")
    }
}
