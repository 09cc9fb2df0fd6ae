import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A private libvirtd (with its virtlogd) for one test, reached as `qemu:///system?socket=...`.
///
/// It runs as root in a mount namespace of its own, where `/etc/libvirt`, `/run/libvirt`, `/var/lib/libvirt`,
/// `/var/log/libvirt`, `/var/cache/libvirt` and `/var/log/swtpm` (where libvirt has swtpm log a TPM's setup and
/// runs) are folders of the fixture: the machine's own libvirt (its
/// configuration, domains, sockets, a daemon already running) is neither used nor touched, and the daemon's
/// qemu.conf is the one the shared notes give (QEMU as root, no security driver, no ownership changes).
/// Both daemons are one process group that the fixture stops at teardown; the guest's QEMU is destroyed before that.
///
/// Started with `remote:` certificates, libvirtd also listens on TCP on 127.0.0.1 (`tcpURI`, no authentication, no TLS
/// on libvirt's own connection), as a remote hypervisor would, and its qemu.conf names the certificates' server folder
/// for backups, so a pull backup over `<server transport='tcp' tls='yes' .../>` exports with TLS and verifies clients.
struct LibvirtDaemon: Sendable {
    /// What a daemon started with `remote:` offers on TCP.
    struct Remote: Sendable {
        /// libvirtd's TCP port on 127.0.0.1, picked at random among free ones.
        let port: Int
        /// qemu.conf's `backup_tls_x509_cert_dir` is `certificates.serverDirectory`; clients of a backup's NBD export
        /// use `certificates.clientDirectory`.
        let certificates: TLSCertificates

        /// `qemu+tcp://127.0.0.1:PORT/system`.
        var uri: String { "qemu+tcp://127.0.0.1:\(port)/system" }
    }

    /// The folder that stands for libvirt's system folders inside the namespace.
    let dir: String
    /// `qemu:///system?socket=...`, the unix socket (also in remote mode).
    let uri: String
    /// Set when started with `remote:`.
    let remote: Remote?
    /// `qemu+tcp://127.0.0.1:PORT/system` in remote mode, else nil.
    var tcpURI: String? { remote?.uri }
    /// `unshare ... sh`, which runs virtlogd and libvirtd.
    private let child: ChildProcess

    /// The system folders that are replaced, and the names of their stand-ins under `dir`.
    private static let folders = [
        ("/etc/libvirt", "etc"), ("/run/libvirt", "run"), ("/var/lib/libvirt", "lib"),
        ("/var/log/libvirt", "log"), ("/var/cache/libvirt", "cache"), ("/var/log/swtpm", "swtpm-log"),
    ]

    /// The log swtpm keeps for domain `domain` (libvirt's `/var/log/swtpm/libvirt/qemu/NAME-swtpm.log`), seen from
    /// outside the namespace: `swtpm_setup` writes "Starting vTPM manufacturing" there when libvirt makes a TPM's
    /// state anew, with `--vmid NAME:UUID`.
    func swtpmLog(_ domain: String) -> String { "\(dir)/swtpm-log/libvirt/qemu/\(domain)-swtpm.log" }

    /// The lines qemu.conf gets in remote mode: backups' NBD exports over TCP use these certificates and require
    /// client certificates signed by their CA.
    static func backupTLSConf(_ certificates: TLSCertificates) -> String {
        """
        backup_tls_x509_cert_dir = "\(certificates.serverDirectory)"
        backup_tls_x509_verify = 1

        """
    }

    /// libvirtd.conf in remote mode: plain TCP on 127.0.0.1:`port`, without authentication (libvirtd needs `--listen`).
    static func libvirtdConf(port: Int) -> String {
        """
        listen_tls = 0
        listen_tcp = 1
        listen_addr = "127.0.0.1"
        tcp_port = "\(port)"
        auth_tcp = "none"

        """
    }

    /// Starts the daemons and waits until libvirtd answers (`virsh version`, over TCP in remote mode), at most 60 s.
    /// With `remote`, libvirtd listens on a random TCP port of 127.0.0.1; when that port is taken (libvirtd exits with
    /// "Unable to bind to port"), another is written to libvirtd.conf for the next start of libvirtd's loop (5 tries).
    static func start(_ fx: Fixture, remote certificates: TLSCertificates? = nil) async throws -> LibvirtDaemon {
        let dir = try fx.makeDirectory("lv")
        for (_, name) in folders {
            try FileManager.default.createDirectory(atPath: "\(dir)/\(name)", withIntermediateDirectories: true)
        }
        try CapabilitiesCache.seed("\(dir)/cache", for: .daemon)
        let conf = TestGuest.qemuConf + (certificates.map(backupTLSConf) ?? "")
        try FileFacts.create("\(dir)/etc/qemu.conf", with: Data(conf.utf8))
        var port = Int.random(in: 20000...60000)
        if certificates != nil {
            try FileFacts.create("\(dir)/etc/libvirtd.conf", with: Data(libvirtdConf(port: port).utf8))
        }
        // Mount points must exist on the machine; on a fresh one only some of them do.
        var script = "set -e\n"
        for (system, name) in folders {
            script += "mkdir -p \(system)\nmount --bind \(dir)/\(name) \(system)\n"
        }
        // Pid files in the fixture too (the default, /run/libvirtd.pid, is the machine's). libvirtd runs in a loop so
        // that a test can restart it (`restartLibvirtd`); the fixture's teardown ends the whole process group.
        script += "virtlogd -p \(dir)/virtlogd.pid &\n"
        // In remote mode a libvirtd that could not bind its TCP port (exit status 1) is started again, with the port
        // `start` has written meanwhile; `set -e` would end the loop.
        let libvirtd = certificates == nil ? "libvirtd" : "libvirtd --listen"
        let orNot = certificates == nil ? "" : " || true"
        script += "while true; do \(libvirtd) -p \(dir)/libvirtd.pid\(orNot); sleep 0.2; done\n"
        let child = try fx.spawn(
            ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script], label: "libvirtd")
        let uri = "qemu:///system?socket=\(dir)/run/libvirt-sock"
        guard let certificates else {
            let daemon = LibvirtDaemon(dir: dir, uri: uri, remote: nil, child: child)
            try await daemon.waitUntilAnswering(fx, notPid: nil)
            return daemon
        }
        for attempt in 1...5 {
            let daemon = LibvirtDaemon(
                dir: dir, uri: uri, remote: Remote(port: port, certificates: certificates), child: child)
            do {
                try await daemon.waitUntilAnswering(fx, notPid: nil)
                return daemon
            } catch is PortTaken {
                guard attempt < 5 else { break }
                port = Int.random(in: 20000...60000)
                try Data(libvirtdConf(port: port).utf8).write(
                    to: URL(fileURLWithPath: "\(dir)/etc/libvirtd.conf"), options: .atomic)
            }
        }
        throw HarnessError("libvirtd could not listen on any of 5 random TCP ports")
    }

    /// Stops libvirtd (SIGTERM) and waits until its successor answers; QEMU and virtlogd keep running, as with a
    /// package upgrade or `systemctl restart libvirtd`.
    func restartLibvirtd(_ fx: Fixture) async throws {
        let pid = try libvirtdPid()
        guard kill(pid, SIGTERM) == 0 else { throw HarnessError("kill \(pid): errno \(errno)") }
        try await waitUntilAnswering(fx, notPid: pid)
    }

    /// `command` run inside libvirtd's mount namespace (`nsenter --mount --target PID --`), where
    /// `/var/lib/libvirt` and the other system folders are the daemon's stand-ins: there a program sees the files
    /// at the paths libvirt names in a domain's XML (its NVRAM under `/var/lib/libvirt/qemu/nvram`, its TPM's state
    /// under `/var/lib/libvirt/swtpm`). The fixture's folders and `/tmp` are the same inside.
    func inNamespace(_ command: [String]) throws -> [String] {
        ["nsenter", "--mount", "--target", String(try libvirtdPid()), "--"] + command
    }

    /// Where the file libvirt calls `path` (under one of the replaced system folders, e.g.
    /// `/var/lib/libvirt/qemu/nvram/NAME_VARS.fd`) is seen from outside the namespace; other paths are the same.
    func outside(_ path: String) -> String {
        for (system, name) in Self.folders where path == system || path.hasPrefix(system + "/") {
            return "\(dir)/\(name)" + path.dropFirst(system.count)
        }
        return path
    }

    /// The pid libvirtd wrote into `DIR/libvirtd.pid`.
    func libvirtdPid() throws -> pid_t {
        let text = (try? String(contentsOfFile: "\(dir)/libvirtd.pid", encoding: .utf8)) ?? ""
        guard let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0 else {
            throw HarnessError("no pid in \(dir)/libvirtd.pid: \(text)")
        }
        return pid
    }

    /// libvirtd's loop logged one more failure to bind its TCP port than before the wait began.
    private struct PortTaken: Error, CustomStringConvertible {
        var description: String { "libvirtd could not bind its TCP port (Address already in use)" }
    }

    /// How often libvirtd has failed to bind its TCP port so far (its log goes to the loop's stderr).
    private func bindFailures() -> Int {
        child.stderrSoFar().components(separatedBy: "Unable to bind to port").count - 1
    }

    /// Waits (at most 60 s) until a libvirtd other than `notPid` has written its pid and answers `virsh version`
    /// (over TCP in remote mode); throws `PortTaken` as soon as libvirtd fails to bind its TCP port.
    private func waitUntilAnswering(_ fx: Fixture, notPid: pid_t?) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(60)
        let failuresBefore = bindFailures()
        while true {
            guard child.isRunning else {
                throw HarnessError("libvirtd's loop ended: \(child.result())")
            }
            if remote != nil, bindFailures() > failuresBefore { throw PortTaken() }
            if let pid = try? libvirtdPid(), pid != notPid, kill(pid, 0) == 0,
                FileManager.default.fileExists(atPath: "\(dir)/run/libvirt-sock")
            {
                let version = try await fx.run(["virsh", "-c", tcpURI ?? uri, "version"], timeout: .seconds(30))
                if version.succeeded { return }
            }
            guard clock.now < deadline else {
                throw HarnessError("libvirtd did not answer within 60 s: \(child.stderrSoFar())")
            }
            try await Task.sleep(for: .milliseconds(200))
        }
    }
}
