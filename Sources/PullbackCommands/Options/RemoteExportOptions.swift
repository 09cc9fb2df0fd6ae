import ArgumentParser
import Backup

/// `--nbd-host`, `--nbd-ports`, `--nbd-tls-certificates` and `--insecure-nbd`: how a backup of a domain on another
/// host (a remote `--connect` URI) reaches the hypervisor's NBD export.
struct RemoteExportOptions: ParsableArguments {
    @Option(help: "With a remote --connect URI: the hypervisor's address for the NBD export (default: the URI's host).")
    var nbdHost: String?

    @Option(help: "With a remote --connect URI: the TCP ports to try for the export, FIRST-LAST (default 10809-10872).")
    var nbdPorts: String?

    @Option(
        help: ArgumentHelp(
            "With a remote --connect URI: the client's TLS folder (ca-cert.pem, client-cert.pem, client-key.pem).",
            valueName: "dir"), completion: .directory)
    var nbdTLSCertificates = RemoteExport.defaultCertificates

    @Flag(help: "With a remote --connect URI: accept the export without TLS (anyone on the path reads the disks).")
    var insecureNBD = false

    func validate() throws {
        if let nbdPorts, Self.ports(nbdPorts) == nil {
            throw ValidationError("--nbd-ports needs FIRST-LAST, ports from 1 to 65535, as 10809-10872")
        }
        if let nbdHost, nbdHost.isEmpty { throw ValidationError("--nbd-host needs a host name or address") }
    }

    var export: RemoteExport {
        RemoteExport(
            host: nbdHost, ports: nbdPorts.flatMap(Self.ports) ?? RemoteExport.defaultPorts,
            certificates: nbdTLSCertificates, insecure: insecureNBD)
    }

    /// `FIRST-LAST` or a single port.
    private static func ports(_ text: String) -> ClosedRange<Int>? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let first = Int(parts[0]), let last = Int(parts.last!),
            1 <= first, first <= last, last <= 65535
        else { return nil }
        return first...last
    }
}
