import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

extension BackupIntegration {
    /// The harness for remote hypervisors: a guest under a private libvirtd that also listens on
    /// `qemu+tcp://127.0.0.1:PORT/system` (`LibvirtDriver.remoteDaemon`), whose pull backups export over NBD on TCP with
    /// TLS. Only virsh and libnbd's tools are used here; the exported bytes are compared with the guest's reference.
    @Suite("Remote hypervisor harness", .serialized)
    struct RemoteHarnessTests {
        /// A pull backup of `vda` served on 127.0.0.1:`port` over TCP, with the scratch file in the fixture.
        static func backupXML(_ guest: LibvirtGuest, port: Int, tls: Bool = true) -> String {
            """
            <domainbackup mode='pull'><server transport='tcp' tls='\(tls ? "yes" : "no")' name='127.0.0.1' \
            port='\(port)'/><disks><disk name='vda' backup='yes' type='file'>\
            <scratch file='\(scratch(guest))'/></disk></disks></domainbackup>
            """
        }

        static func scratch(_ guest: LibvirtGuest) -> String { guest.fx.path("scratch-vda.qcow2") }

        /// `virsh -c TCPURI backup-begin NAME XML [CHECKPOINTXML]` with `xml` written to a file of the fixture.
        static func backupBegin(
            _ guest: LibvirtGuest, _ tcpURI: String, xml: String, checkpointXML: String? = nil
        ) async throws -> CommandResult {
            let fx = guest.fx
            let path = fx.path("backup.xml")
            try Data(xml.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
            var command = ["virsh", "-c", tcpURI, "backup-begin", guest.name, path]
            if let checkpointXML {
                let checkpointPath = fx.path("checkpoint.xml")
                try Data(checkpointXML.utf8).write(to: URL(fileURLWithPath: checkpointPath), options: .atomic)
                command.append(checkpointPath)
            }
            return try await fx.run(command, timeout: .seconds(60))
        }

        /// Begins a TLS pull backup on a random port of 127.0.0.1, trying another port when libvirt reports it taken
        /// (5 tries); returns the port.
        static func beginTLSBackup(_ guest: LibvirtGuest, _ tcpURI: String) async throws -> Int {
            var last: CommandResult?
            for _ in 0..<5 {
                let port = Int.random(in: 20000...60000)
                let begun = try await backupBegin(guest, tcpURI, xml: backupXML(guest, port: port))
                if begun.succeeded { return port }
                guard begun.stderr.contains("Address already in use") else {
                    throw HarnessError("backup-begin failed: \(begun)")
                }
                last = begun
            }
            throw HarnessError("backup-begin found no free TCP port in 5 tries: \(String(describing: last))")
        }

        /// `virsh domjobabort`, then waits (at most 10 s) until the domain has no job.
        static func abort(_ guest: LibvirtGuest, _ tcpURI: String) async throws {
            try await guest.fx.runChecked(["virsh", "-c", tcpURI, "domjobabort", guest.name])
            for _ in 0..<50 {
                let info = try await guest.fx.run(["virsh", "-c", tcpURI, "domjobinfo", guest.name])
                let type = info.stdout.split(whereSeparator: \.isNewline).first { $0.hasPrefix("Job type:") }?
                    .dropFirst("Job type:".count).trimmingCharacters(in: .whitespaces)
                if info.succeeded, type == "None" { return }
                try await Task.sleep(for: .milliseconds(200))
            }
            try await guest.expectNoJob()
        }

        @Test(
            "virsh over qemu+tcp lists the guest; its pull backup over TCP with TLS gives nbdcopy the disk's bytes and refuses plaintext",
            .timeLimit(.minutes(3)))
        func tlsExportOverTCP() async throws {
            try await LibvirtGuest.run(disks: [("vda", 64 * mib)], driver: .remoteDaemon) { fx, guest in
                let remote = try #require(guest.daemon?.remote)
                #expect(guest.tcpURI == "qemu+tcp://127.0.0.1:\(remote.port)/system")
                try await guest.write("vda", "write -P 0x5a 1M 128k", "write -P 0xa5 40M 64k", "write -P 0x11 63M 4k")
                let snapshot = try await guest.snapshot("tcp")

                let list = try await fx.runChecked(["virsh", "-c", remote.uri, "list", "--name"])
                #expect(
                    list.stdout.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
                        .contains(guest.name), "virsh list over TCP: \(list)")

                let port = try await Self.beginTLSBackup(guest, remote.uri)
                let described = try await fx.runChecked(["virsh", "-c", remote.uri, "backup-dumpxml", guest.name])
                #expect(
                    described.stdout.contains("<server transport='tcp' tls='yes' name='127.0.0.1' port='\(port)'/>"),
                    "\(described)")
                let client = remote.certificates.clientDirectory
                let copy = fx.target("copy.raw")
                try await fx.runChecked([
                    "nbdcopy", "nbds://127.0.0.1:\(port)/vda?tls-certificates=\(client)", copy,
                ])
                try await expectSameBytes(fx, copy, try #require(snapshot["vda"]))

                // The server answers a plaintext client, and refuses it (not "could not connect").
                let plaintext = try await fx.run(["nbdinfo", "nbd://127.0.0.1:\(port)/vda"])
                #expect(!plaintext.succeeded, "plaintext nbdinfo: \(plaintext)")
                #expect(!plaintext.stderr.contains("could not connect"), "\(plaintext)")

                try await Self.abort(guest, remote.uri)
                try await guest.expectNoJob()
                #expect(!FileManager.default.fileExists(atPath: Self.scratch(guest)), "scratch file left")
            }
        }

        @Test(
            "a TCP export on a port already taken fails with libvirt's 'Address already in use' and leaves no job, checkpoint or scratch",
            .timeLimit(.minutes(3)))
        func portTaken() async throws {
            try await LibvirtGuest.run(disks: [("vda", 64 * mib)], driver: .remoteDaemon) { _, guest in
                let remote = try #require(guest.daemon?.remote)
                let held = try HeldPort()
                defer { held.close() }
                let checkpointXML = """
                    <domaincheckpoint><name>taken</name><disks><disk name='vda' checkpoint='bitmap'/></disks>\
                    </domaincheckpoint>
                    """
                let begun = try await Self.backupBegin(
                    guest, remote.uri, xml: Self.backupXML(guest, port: held.port), checkpointXML: checkpointXML)
                #expect(!begun.succeeded)
                #expect(
                    begun.stderr.contains(
                        "unable to execute QEMU command 'nbd-server-start': Failed to find an available port: Address already in use"
                    ), "\(begun)")
                try await guest.expectNoJob()
                #expect(try await guest.checkpoints() == [])
                #expect(!FileManager.default.fileExists(atPath: Self.scratch(guest)), "scratch file left")

                // Nothing lingers: a backup on a free port begins, and is aborted.
                _ = try await Self.beginTLSBackup(guest, remote.uri)
                try await Self.abort(guest, remote.uri)
            }
        }
    }
}

/// A TCP socket listening on 127.0.0.1 on a port the kernel picks, until `close()`.
final class HeldPort: Sendable {
    let fd: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket() failed: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && listen(fd, 1) == 0
                    && getsockname(fd, $0, &length) == 0
            }
        }
        guard bound else {
            Glibc.close(fd)
            throw HarnessError("bind/listen on 127.0.0.1 failed: errno \(errno)")
        }
        self.fd = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() { _ = Glibc.close(fd) }
}
