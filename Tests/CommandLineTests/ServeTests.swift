import Foundation
import Testing

extension CopyIntegration {
    /// `pullback serve --image`: real NBD clients (nbdinfo, nbdcopy, qemu-img, nbdsh, pullback's own client) read a
    /// qcow2 chain and a raw image from it, byte for byte, while a misbehaving client is dropped.
    @Suite("pullback serve", .serialized)
    struct ServeTests {
        /// A 64 MiB chain (data in the base, zeros and data in the overlay) and a 3 MiB raw image.
        static func makeImages(_ fx: Fixture) async throws -> (top: String, raw: String) {
            let base = fx.path("base.qcow2")
            let top = fx.path("top.qcow2")
            let raw = fx.path("disk.raw")
            try await fx.runChecked(["qemu-img", "create", "-q", "-f", "qcow2", base, "64M"])
            try await fx.runChecked([
                "qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 4M", "-c", "write -P 0x22 40M 1M", base,
            ])
            try await fx.runChecked(["qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top])
            try await fx.runChecked([
                "qemu-io", "-f", "qcow2", "-c", "write -z 1M 1M", "-c", "write -P 0x33 10M 65537", top,
            ])
            try await fx.runChecked(["qemu-img", "create", "-q", "-f", "raw", raw, "3M"])
            try await fx.runChecked(["qemu-io", "-f", "raw", "-c", "write -P 0x44 4096 8192", raw])
            return (top, raw)
        }

        /// Starts `pullback serve` on a socket in the fixture and waits for the URIs it prints.
        static func serve(_ fx: Fixture, images: [String], socket: String) async throws -> ChildProcess {
            try await start(fx, ["--socket", socket] + images.flatMap { ["--image", $0] }, exports: images.count).server
        }

        /// Starts `pullback serve ARGUMENTS` (after `under`, a command that runs it, as `prlimit`) and waits until it
        /// has printed the URIs of its `exports`.
        static func start(
            _ fx: Fixture, _ arguments: [String], exports: Int, under: [String] = []
        ) async throws -> (server: ChildProcess, uris: [String]) {
            let server = try fx.spawn(under + [try Pullback.binaryPath(), "serve"] + arguments, label: "serve")
            var uris: [String] = []
            let ready = try await waitUntil(timeout: .seconds(20)) {
                let printed = (try? String(contentsOfFile: server.stdoutPath, encoding: .utf8)) ?? ""
                uris = printed.split(separator: "\n").map(String.init)
                return uris.count == exports || !server.isRunning
            }
            try #require(ready && server.isRunning, "pullback serve did not start: \(server.result())")
            return (server, uris)
        }

        @Test(
            "nbdinfo, nbdcopy, qemu-img and pullback copy read exactly the chain; the map is qemu's; writes are refused",
            .timeLimit(.minutes(2)))
        func clientsReadTheChain() async throws {
            try await Fixture.run { fx in
                let (top, raw) = try await Self.makeImages(fx)
                let socket = fx.path("serve.sock")
                let server = try await Self.serve(fx, images: [top, raw], socket: socket)
                let uri = "nbd+unix:///top.qcow2?socket=\(socket)"
                let printed = try String(contentsOfFile: server.stdoutPath, encoding: .utf8)
                #expect(printed == "\(uri)\nnbd+unix:///disk.raw?socket=\(socket)\n")
                #expect(try #require(FileFacts.mode(socket)) & 0o777 == 0o600, "the socket is the owner's only")

                let list = try await fx.runChecked(["nbdinfo", "--list", "nbd+unix:///?socket=\(socket)"])
                #expect(list.stdout.contains("export=\"top.qcow2\"") && list.stdout.contains("export=\"disk.raw\""))
                #expect(list.stdout.contains("67108864") && list.stdout.contains("3145728"), "\(list.stdout)")
                #expect(list.stdout.contains("is_read_only: true") && list.stdout.contains("can_multi_conn: true"))

                // Every reader gets the chain's bytes.
                let copied = fx.target("nbdcopy.raw")
                try await fx.runChecked(["nbdcopy", uri, copied])
                try await fx.runChecked(["qemu-img", "compare", "-f", "raw", copied, "-F", "qcow2", top])
                try await fx.runChecked(["qemu-img", "compare", uri, "-F", "qcow2", top])
                let converted = fx.target("converted.qcow2")
                try await fx.runChecked(["qemu-img", "convert", "-O", "qcow2", uri, converted])
                try await Qemu.expectIdentical(fx, converted, top, referenceFormat: "qcow2")
                let ours = fx.target("pullback.qcow2")
                try requireSuccess(try await Pullback.copy(fx, [uri, ours, "--format", "qcow2"]))
                try await Qemu.expectIdentical(fx, ours, top, referenceFormat: "qcow2")
                let rawCopy = fx.target("disk.copy")
                try await fx.runChecked(["nbdcopy", "nbd+unix:///disk.raw?socket=\(socket)", rawCopy])
                try await fx.runChecked(["cmp", rawCopy, raw])

                // base:allocation says what qemu says: which bytes are data, which read as zeros.
                let served = Self.merge(
                    try await NBDInfo.map(uri, context: "base:allocation", using: fx).filter { $0.type & 2 != 0 }
                        .map(\.range))
                let local = Self.merge(try await Qemu.map(top, using: fx).filter(\.zero).map(\.range))
                #expect(served == local, "served map \(served), qemu-img map \(local)")

                // qemu:allocation-depth says what qemu-nbd -A says of the same chain.
                let qemuSocket = fx.path("qemu.sock")
                _ = try fx.spawn(["qemu-nbd", "-r", "-A", "-f", "qcow2", "-k", qemuSocket, top], label: "qemu-nbd")
                try #require(
                    try await waitUntil(timeout: .seconds(20)) { FileManager.default.fileExists(atPath: qemuSocket) })
                func depths(_ uri: String) async throws -> String {
                    try await fx.runChecked(["nbdinfo", "--map=qemu:allocation-depth", uri]).stdout
                }
                let depthsServed = try await depths(uri)
                #expect(depthsServed.contains("backing depth 2") && depthsServed.contains("local"))
                #expect(depthsServed == (try await depths("nbd+unix:///?socket=\(qemuSocket)")))

                // A raw image's holes are holes (SEEK_HOLE), in both contexts as qemu-nbd reports them.
                let rawSocket = fx.path("qemu-raw.sock")
                _ = try fx.spawn(
                    ["qemu-nbd", "-r", "-t", "-A", "-f", "raw", "-k", rawSocket, raw], label: "qemu-nbd-raw")
                try #require(
                    try await waitUntil(timeout: .seconds(20)) { FileManager.default.fileExists(atPath: rawSocket) })
                for context in ["base:allocation", "qemu:allocation-depth"] {
                    let ours = try await fx.runChecked([
                        "nbdinfo", "--map=\(context)", "nbd+unix:///disk.raw?socket=\(socket)",
                    ]).stdout
                    let qemus = try await fx.runChecked([
                        "nbdinfo", "--map=\(context)", "nbd+unix:///?socket=\(rawSocket)",
                    ])
                    .stdout
                    #expect(ours == qemus, "\(context): ours \(ours), qemu-nbd \(qemus)")
                    #expect(context != "base:allocation" || ours.contains("hole,zero"), "\(ours)")
                }

                // A write is refused with EPERM, and the export is unchanged.
                let write = try await fx.run([
                    "/usr/bin/python3", "-m", "nbd", "-u", uri, "-c", "h.pwrite(b'x' * 512, 0)",
                ])
                #expect(!write.succeeded && write.stderr.contains("Operation not permitted"), "\(write)")
                try await fx.runChecked(["qemu-img", "compare", uri, "-F", "qcow2", top])

                // A second server on the same path is refused in one line; the first goes on.
                let second = try await fx.run([try Pullback.binaryPath(), "serve", "--image", top, "--socket", socket])
                expectCleanFailure(second, mentioning: [socket, "File exists"])
                try await fx.runChecked(["qemu-img", "compare", uri, "-F", "qcow2", top])
                let leftovers = try FileManager.default.contentsOfDirectory(atPath: fx.root)
                #expect(!leftovers.contains { $0.hasPrefix(".pullback-serve-") }, "\(leftovers)")

                // SIGINT ends the server cleanly and removes its socket.
                server.interrupt()
                let ended = try await server.waitForExit(timeout: .seconds(20))
                #expect(ended.succeeded, "\(ended)")
                #expect(!FileManager.default.fileExists(atPath: socket))
            }
        }

        @Test(
            "clients that break the protocol are dropped; one served at the same time gets its data",
            .timeLimit(.minutes(2)))
        func misbehavingClients() async throws {
            try await Fixture.run { fx in
                let (top, _) = try await Self.makeImages(fx)
                let socket = fx.path("serve.sock")
                let server = try await Self.serve(fx, images: [top], socket: socket)
                // Wrong magic, an unknown option, an oversized option, a read past the end and of 0 bytes, an abrupt
                // end mid-request, a command before GO, a client gone in the middle of its replies, then random bytes
                // after the handshake.
                let script = """
                    import socket, struct, os, random
                    def connect():
                        s = socket.socket(socket.AF_UNIX); s.connect(\(String(reflecting: socket))); s.recv(18); return s
                    def option(s, code, data=b''):
                        s.sendall(struct.pack('>QII', 0x49484156454F5054, code, len(data)) + data)
                        return struct.unpack('>QIII', s.recv(20))
                    s = connect(); s.sendall(struct.pack('>I', 3)); s.sendall(b'NOTMAGIC' + bytes(8))
                    assert s.recv(100) == b'', 'a wrong magic ends the connection'
                    s = connect(); s.sendall(struct.pack('>I', 3))
                    assert option(s, 99)[2] == 0x80000001, 'unknown option: ERR_UNSUP'
                    s.sendall(struct.pack('>QII', 0x49484156454F5054, 7, 1 << 30))
                    assert s.recv(100) == b'', 'an oversized option ends the connection'
                    s = connect(); s.sendall(struct.pack('>I', 3))
                    name = b'top.qcow2'
                    reply = option(s, 7, struct.pack('>I', len(name)) + name + struct.pack('>H', 0))
                    while reply[2] != 1:
                        s.recv(reply[3]); reply = struct.unpack('>QIII', s.recv(20))
                    for offset, length in ((64 << 20, 512), (0, 0), (0, 64 << 20)):
                        s.sendall(struct.pack('>IHHQQI', 0x25609513, 0, 0, 7, offset, length))
                        magic, error, cookie = struct.unpack('>IIQ', s.recv(16))
                        assert magic == 0x67446698 and error in (22, 75) and cookie == 7, (offset, length, error)
                    s.sendall(struct.pack('>IHHQQ', 0x25609513, 0, 0, 8, 0)); s.close()
                    s = connect(); s.sendall(struct.pack('>I', 3))
                    s.sendall(struct.pack('>IHHQQI', 0x25609513, 0, 0, 1, 0, 512))
                    assert s.recv(100) == b'', 'a command before GO ends the connection'
                    s = connect(); s.sendall(struct.pack('>I', 3))
                    reply = option(s, 7, struct.pack('>I', len(name)) + name + struct.pack('>H', 0))
                    while reply[2] != 1:
                        s.recv(reply[3]); reply = struct.unpack('>QIII', s.recv(20))
                    for cookie in range(8):
                        s.sendall(struct.pack('>IHHQQI', 0x25609513, 0, 0, cookie, 0, 32 << 20))
                    assert len(s.recv(1000)) > 0; s.close()  # gone in the middle of 256 MiB of replies
                    random.seed(7)
                    for _ in range(50):
                        s = connect(); s.sendall(struct.pack('>I', 3) + os.urandom(random.randint(1, 200)))
                        s.close()
                    print('ok')
                    """
                let hostile = try await fx.run(["python3", "-c", script])
                #expect(hostile.succeeded && hostile.stdout == "ok\n", "\(hostile)")
                #expect(server.isRunning, "the server stays up")
                let copied = fx.target("after.raw")
                try await fx.runChecked(["nbdcopy", "nbd+unix:///top.qcow2?socket=\(socket)", copied])
                try await fx.runChecked(["qemu-img", "compare", "-f", "raw", copied, "-F", "qcow2", top])
                let unknown = try await fx.run(["nbdinfo", "nbd+unix:///../etc/passwd?socket=\(socket)"])
                #expect(!unknown.succeeded, "an export that is not served is refused: \(unknown)")
            }
        }

        @Test(
            "Replication: each point of repository A served, its changed clusters pulled into B over B's parent; every point of B reads as A's restore",
            .timeLimit(.minutes(4)))
        func replicatesRepositoryPoints() async throws {
            try await LibvirtGuest.run { fx, guest in
                try await guest.write("vda", "write -P 0x31 0 2M", "write -P 0x32 20M 1M")
                try await guest.write("vdb", "write -P 0x33 1M 64k")
                let (full, _) = try await BackupTests.backup(guest)
                try await guest.write("vda", "write -P 0x34 4M 64k", "write -z 20M 64k", "write -P 0x35 30M 3")
                let (first, _) = try await BackupTests.backup(guest)
                try await guest.write("vda", "write -P 0x36 65535 2", "write -P 0x37 50M 1M")
                try await guest.write("vdb", "write -P 0x38 0 4k")
                let (second, _) = try await BackupTests.backup(guest)
                #expect([first.level, second.level] == ["incremental", "incremental"], "\(first), \(second)")
                let folder = { (point: String) in "\(guest.repo)/\(guest.name)/\(point)" }
                let replica = try fx.makeDirectory("replica")

                var replicaParents: [String: String] = [:]
                for point in [full.point, first.point, second.point] {
                    let socket = fx.path("\(point).sock")
                    let server = try await Self.start(
                        fx, ["--repo", guest.repo, guest.name, "--at", point, "--socket", socket], exports: 2
                    ).server
                    let restored = fx.target("restored-\(point)")
                    try requireSuccess(
                        try await guest.pullback([
                            "restore", "--repo", guest.repo, guest.name, "--at", point, "--to", restored, "--format",
                            "raw",
                        ]))
                    for target in ["vda", "vdb"] {
                        let uri = "nbd+unix:///\(target)?socket=\(socket)"
                        let image = folder(point) + "/\(target).qcow2"
                        try await fx.runChecked(["qemu-img", "compare", "-U", uri, "-F", "qcow2", image])

                        // The dirty bitmap is exactly the clusters the point's own image holds.
                        let dirty = Self.merge(
                            try await NBDInfo.dirtyRanges(uri, bitmap: "backup-\(target)", using: fx))
                        let own = Self.merge(
                            try await Qemu.map(image, using: fx).filter { $0.depth == 0 && $0.present }.map(\.range))
                        #expect(dirty == own, "\(point) \(target): dirty \(dirty), own \(own)")
                        let unchanged = point == first.point && target == "vdb"  // the guest did not write it
                        #expect(dirty.isEmpty == unchanged, "\(point) \(target): dirty \(dirty)")

                        // B's image: for an incremental, only those clusters, over B's image of the parent.
                        let replicated = "\(replica)/\(point)-\(target).qcow2"
                        var arguments = [uri, replicated, "--format", "qcow2", "--json"]
                        if let parent = replicaParents[target] {
                            arguments += ["--bitmap", "backup-\(target)", "--backing", parent]
                        }
                        let copy = try await Pullback.copy(fx, arguments)
                        try requireSuccess(copy)
                        let stats = try CopyStats.decode(stdout: copy.stdout)
                        if replicaParents[target] != nil {
                            let dirtyBytes = dirty.reduce(0) { $0 + $1.count }
                            #expect(stats.bytesRead + stats.zeroBytes <= dirtyBytes, "\(stats), \(dirtyBytes)")
                            let replicaOwn = Self.merge(
                                try await Qemu.map(replicated, using: fx).filter { $0.depth == 0 && $0.present }
                                    .map(\.range))
                            #expect(replicaOwn == own, "\(point) \(target): B holds \(replicaOwn), A \(own)")
                        }
                        try await Qemu.expectIdentical(fx, replicated, image, referenceFormat: "qcow2")
                        try await Qemu.expectIdentical(
                            fx, replicated, "\(restored)/\(target).raw", referenceFormat: "raw")
                        replicaParents[target] = replicated
                    }
                    server.interrupt()
                    #expect(try await server.waitForExit(timeout: .seconds(20)).succeeded)
                }
                let unknown = try await guest.pullback([
                    "serve", "--repo", guest.repo, guest.name, "--at", "20200101T000000Z", "--socket",
                    fx.path("x.sock"),
                ])
                expectCleanFailure(unknown, mentioning: ["20200101T000000Z"])
            }
        }

        @Test("8 clients at once read exact data, with the server's memory bounded", .timeLimit(.minutes(2)))
        func eightClients() async throws {
            try await Fixture.run { fx in
                let (top, _) = try await Self.makeImages(fx)
                let socket = fx.path("serve.sock")
                let server = try await Self.serve(fx, images: [top], socket: socket)
                let uri = "nbd+unix:///top.qcow2?socket=\(socket)"
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for index in 0..<8 {
                        group.addTask {
                            let copy = fx.target("client\(index).raw")
                            try await fx.runChecked(["nbdcopy", "--connections=4", uri, copy])
                            try await fx.runChecked(["qemu-img", "compare", "-f", "raw", copy, "-F", "qcow2", top])
                        }
                    }
                    try await group.waitForAll()
                }
                let kib = ServeLimitsTests.memory(server.pid, "VmHWM")
                #expect(kib > 0 && kib < 256 << 10, "the server's peak RSS: \(kib) KiB")
            }
        }

        @Test("TCP without TLS only with --insecure; then any client reads the export", .timeLimit(.minutes(1)))
        func tcp() async throws {
            try await Fixture.run { fx in
                let (top, _) = try await Self.makeImages(fx)
                let refused = try await fx.run([
                    try Pullback.binaryPath(), "serve", "--image", top, "--listen", "127.0.0.1:0",
                ])
                #expect(!refused.succeeded && refused.stderr.contains("--insecure"), "\(refused)")
                let uri = try await Self.start(
                    fx, ["--image", top, "--listen", "127.0.0.1:0", "--insecure"], exports: 1
                ).uris[0]
                #expect(uri.hasPrefix("nbd://127.0.0.1:"), "\(uri)")
                let copy = fx.target("tcp.raw")
                try await fx.runChecked(["nbdcopy", uri, copy])
                try await fx.runChecked(["qemu-img", "compare", "-f", "raw", copy, "-F", "qcow2", top])
            }
        }

        /// `ranges` sorted, with touching or overlapping ones joined.
        static func merge(_ ranges: [Range<Int64>]) -> [Range<Int64>] {
            var merged: [Range<Int64>] = []
            for range in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
                if let last = merged.last, last.upperBound >= range.lowerBound {
                    merged[merged.count - 1] = last.lowerBound..<max(last.upperBound, range.upperBound)
                } else {
                    merged.append(range)
                }
            }
            return merged
        }
    }
}
