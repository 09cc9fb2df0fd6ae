import FileIO
import Foundation
import SystemPackage

/// How a backup of a domain on another host reaches its disks: QEMU exports them over TCP on the hypervisor, with
/// TLS unless the caller accepts plaintext. A local libvirt URI keeps the unix socket.
public struct RemoteExport: Sendable, Equatable {
    /// The host name or address the hypervisor exports on and pullback connects to; nil: the libvirt URI's host.
    public var host: String?
    /// The ports to try, in order: the first one QEMU can bind is used, so backups of several domains of one
    /// hypervisor run at once.
    public var ports: ClosedRange<Int>
    /// The client's TLS folder (`ca-cert.pem`, `client-cert.pem`, `client-key.pem`), as libnbd takes it.
    public var certificates: String
    /// Accept an export in clear: anyone on the path reads the disks.
    public var insecure: Bool

    public static let defaultPorts = 10809...10872
    public static let defaultCertificates = "/etc/pki/pullback"
    /// The files a client folder must hold.
    public static let certificateFiles = ["ca-cert.pem", "client-cert.pem", "client-key.pem"]

    public init(
        host: String? = nil, ports: ClosedRange<Int> = defaultPorts, certificates: String = defaultCertificates,
        insecure: Bool = false
    ) {
        self.host = host
        self.ports = ports
        self.certificates = certificates
        self.insecure = insecure
    }

    /// The host of a libvirt URI that reaches another host (`qemu+tcp://`, `qemu+tls://`, `qemu+ssh://`, or any with
    /// a host name), nil for a local one (`qemu:///system`, `qemu+unix://`, `qemu:///embed?...`). A remote URI
    /// without a host means this host over the network, as libvirt takes it.
    public static func remoteHost(of uri: String) -> String? {
        guard let components = URLComponents(string: uri), let scheme = components.scheme else { return nil }
        let transport = scheme.split(separator: "+", maxSplits: 1).dropFirst().first.map(String.init)
        let host = components.host.flatMap { $0.isEmpty ? nil : $0 }
        if transport == "unix" { return nil }
        if let host { return host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host }
        return transport == nil ? nil : "localhost"
    }

    /// The problem with the client's TLS folder, or nil when it holds the three files as regular files; a file that
    /// cannot be looked at is a problem of its own, with its errno.
    func certificateProblem() -> String? {
        var missing: [String] = []
        for name in Self.certificateFiles {
            let path = certificates + "/" + name
            do throws(Errno) {
                let status = try FileDescriptor.status(ofTarget: path)
                if status == nil || status?.type == .directory { missing.append(name) }
            } catch {
                return "cannot look at \(path): \(error)"
            }
        }
        guard !missing.isEmpty else { return nil }
        return "\(certificates) lacks \(missing.joined(separator: ", "))"
    }

    /// What is wrong with the client's private key, which libnbd reads from the folder, or nil when only its owner may
    /// read it. The hypervisor's own keys are libvirt's and QEMU's business, not checked here.
    func privateKeyProblem() -> String? {
        PrivateKeyFile.problem(at: certificates + "/client-key.pem")
    }
}
