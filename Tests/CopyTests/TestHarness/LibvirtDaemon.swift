import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A private libvirtd (with its virtlogd) for one test, reached as `qemu:///system?socket=...`.
///
/// It runs as root in a mount namespace of its own, where `/etc/libvirt`, `/run/libvirt`, `/var/lib/libvirt`,
/// `/var/log/libvirt` and `/var/cache/libvirt` are folders of the fixture: the machine's own libvirt (its
/// configuration, domains, sockets, a daemon already running) is neither used nor touched, and the daemon's
/// qemu.conf is the one the shared notes give (QEMU as root, no security driver, no ownership changes).
/// Both daemons are one process group that the fixture stops at teardown; the guest's QEMU is destroyed before that.
struct LibvirtDaemon: Sendable {
    /// The folder that stands for libvirt's system folders inside the namespace.
    let dir: String
    let uri: String
    /// `unshare ... sh`, which runs virtlogd and libvirtd.
    private let child: ChildProcess

    /// The system folders that are replaced, and the names of their stand-ins under `dir`.
    private static let folders = [
        ("/etc/libvirt", "etc"), ("/run/libvirt", "run"), ("/var/lib/libvirt", "lib"),
        ("/var/log/libvirt", "log"), ("/var/cache/libvirt", "cache"),
    ]

    /// The QEMU driver's settings for tests, from the shared notes: QEMU runs as root, with no security driver and
    /// no changes to file ownership.
    static let qemuConf = """
        user = "root"
        group = "root"
        security_driver = "none"
        dynamic_ownership = 0
        remember_owner = 0

        """

    /// Starts the daemons and waits until libvirtd answers (`virsh version`), at most 60 s.
    static func start(_ fx: Fixture) async throws -> LibvirtDaemon {
        let dir = try fx.makeDirectory("lv")
        for (_, name) in folders {
            try FileManager.default.createDirectory(atPath: "\(dir)/\(name)", withIntermediateDirectories: true)
        }
        try FileFacts.create("\(dir)/etc/qemu.conf", with: Data(qemuConf.utf8))
        // Mount points must exist on the machine; on a fresh one only some of them do.
        var script = "set -e\n"
        for (system, name) in folders {
            script += "mkdir -p \(system)\nmount --bind \(dir)/\(name) \(system)\n"
        }
        // Pid files in the fixture too (the default, /run/libvirtd.pid, is the machine's). libvirtd runs in a loop so
        // that a test can restart it (`restartLibvirtd`); the fixture's teardown ends the whole process group.
        script += "virtlogd -p \(dir)/virtlogd.pid &\n"
        script += "while true; do libvirtd -p \(dir)/libvirtd.pid; sleep 0.2; done\n"
        let child = try fx.spawn(
            ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script], label: "libvirtd")
        let daemon = LibvirtDaemon(dir: dir, uri: "qemu:///system?socket=\(dir)/run/libvirt-sock", child: child)
        try await daemon.waitUntilAnswering(fx, notPid: nil)
        return daemon
    }

    /// Stops libvirtd (SIGTERM) and waits until its successor answers; QEMU and virtlogd keep running, as with a
    /// package upgrade or `systemctl restart libvirtd`.
    func restartLibvirtd(_ fx: Fixture) async throws {
        let pid = try libvirtdPid()
        guard kill(pid, SIGTERM) == 0 else { throw HarnessError("kill \(pid): errno \(errno)") }
        try await waitUntilAnswering(fx, notPid: pid)
    }

    private func libvirtdPid() throws -> pid_t {
        let text = (try? String(contentsOfFile: "\(dir)/libvirtd.pid", encoding: .utf8)) ?? ""
        guard let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0 else {
            throw HarnessError("no pid in \(dir)/libvirtd.pid: \(text)")
        }
        return pid
    }

    /// Waits (at most 60 s) until a libvirtd other than `notPid` has written its pid and answers `virsh version`.
    private func waitUntilAnswering(_ fx: Fixture, notPid: pid_t?) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(60)
        while true {
            guard child.isRunning else {
                throw HarnessError("libvirtd's loop ended: \(child.result())")
            }
            if let pid = try? libvirtdPid(), pid != notPid, kill(pid, 0) == 0,
                FileManager.default.fileExists(atPath: "\(dir)/run/libvirt-sock")
            {
                let version = try await fx.run(["virsh", "-c", uri, "version"], timeout: .seconds(30))
                if version.succeeded { return }
            }
            guard clock.now < deadline else {
                throw HarnessError("libvirtd did not answer within 60 s: \(child.stderrSoFar())")
            }
            try await Task.sleep(for: .milliseconds(200))
        }
    }
}
