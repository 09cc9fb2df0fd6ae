import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A TCG guest under libvirt's QEMU driver: embedded (`qemu:///embed?root=ROOT`, ROOT being the fixture's own short
/// directory) or a private libvirtd of the fixture's (`LibvirtDaemon`). The test process never opens a libvirt
/// connection itself: only `virsh` and `pullback` subprocesses do. With the embedded driver they do so one at a time,
/// and each releases the root when it exits (the guest keeps running); the daemon lets them overlap.
///
/// Every disk has a reference raw file `ROOT/<target>.ref` that receives the same writes as the guest, so restored
/// images are compared against it, never against the running guest's qcow2 file.
final class LibvirtGuest: Sendable {
    struct Disk: Sendable {
        let target: String
        let size: Int
        /// `qcow2`, or `raw` for the disks given as `rawDisks`.
        let format: String
        /// The QOM path of the virtio device, for `qemu-io -d` over HMP.
        let device: String
    }

    let fx: Fixture
    let name: String
    let disks: [Disk]
    /// The daemon the guest runs under; nil for the embedded driver.
    let daemon: LibvirtDaemon?
    /// What the guest's files in the fixture start with: nothing for the fixture's first guest, `NAME-` for the
    /// others (``defineSibling(name:disks:running:)``).
    let filePrefix: String
    /// What the guest boots; `.uefiTPM` guests have an NVRAM and a TPM's state beside their disks.
    let firmware: TestGuest.Firmware
    private let defined = Mutex(false)
    /// The other guests defined in the same root, torn down with this one.
    private let siblings = Mutex<[LibvirtGuest]>([])

    var root: String { fx.root }
    var uri: String { daemon?.uri ?? "qemu:///embed?root=\(fx.root)" }
    /// `qemu+tcp://127.0.0.1:PORT/system` of the daemon under `.remoteDaemon`, else nil.
    var tcpURI: String? { daemon?.tcpURI }
    /// The repository the tests back up into, made by `pullback init` when the guest is set up.
    var repo: String { fx.path("repo") }

    private init(
        fx: Fixture, name: String, disks: [Disk], daemon: LibvirtDaemon?, filePrefix: String = "",
        firmware: TestGuest.Firmware = .bios
    ) {
        self.fx = fx
        self.name = name
        self.disks = disks
        self.daemon = daemon
        self.filePrefix = filePrefix
        self.firmware = firmware
    }

    private static func disks(_ disks: [(String, Int)], raw rawDisks: Set<String>) -> [Disk] {
        disks.enumerated().map { index, disk in
            Disk(
                target: disk.0, size: disk.1, format: rawDisks.contains(disk.0) ? "raw" : "qcow2",
                device: "/machine/peripheral/virtio-disk\(index)/virtio-backend")
        }
    }

    /// Defines another guest `name` (and starts it if `running`) in this guest's root and under its driver, with files
    /// of its own; it shares the repository and is torn down with this guest.
    func defineSibling(name: String, disks: [(String, Int)], running: Bool = true) async throws -> LibvirtGuest {
        let sibling = LibvirtGuest(
            fx: fx, name: name, disks: Self.disks(disks, raw: []), daemon: daemon, filePrefix: "\(name)-")
        siblings.withLock { $0.append(sibling) }
        try await sibling.setUp(running: running, sibling: true)
        return sibling
    }

    /// The folder libvirt caches QEMU's capabilities under: `ROOT/cache`, or the daemon's `/var/cache/libvirt`.
    private var libvirtCache: String { daemon.map { $0.dir + "/cache" } ?? fx.path("cache") }

    func image(_ target: String) -> String { fx.path("\(filePrefix)\(target).\(format(of: target))") }
    func format(of target: String) -> String { disks.first { $0.target == target }?.format ?? "qcow2" }
    func reference(_ target: String) -> String { fx.path("\(filePrefix)\(target).ref") }

    /// Runs `body` with a fixture and a defined (and, if `running`, started) guest whose disks are given as
    /// (target, size); the guest is destroyed and undefined (with its checkpoint metadata) whatever happens, before
    /// the fixture removes its directory. With `.daemon`, a private libvirtd is started first (`LibvirtDaemon`) and the
    /// guest runs under it; with `.remoteDaemon` that libvirtd also listens on TCP and exports backups with TLS, with
    /// certificates made in the fixture (`daemon.remote`); otherwise under the embedded driver. The disks named in
    /// `rawDisks` are raw files, the others qcow2. `firmware` `.uefiTPM` makes a q35 guest with OVMF, an NVRAM and an
    /// emulated TPM (`TestGuest.xml`); use it with a daemon (the embedded driver sometimes kills such a guest when
    /// another process connects).
    static func run<T>(
        name: String = "pbg",
        disks: [(String, Int)] = [("vda", 64 * mib), ("vdb", 32 * mib)],
        rawDisks: Set<String> = [],
        running: Bool = true,
        acpi: Bool = false,
        driver: LibvirtDriver = .embedded,
        firmware: TestGuest.Firmware = .bios,
        _ body: (Fixture, LibvirtGuest) async throws -> T
    ) async throws -> T {
        try await Fixture.run { fx in
            let guest = LibvirtGuest(
                fx: fx, name: name, disks: Self.disks(disks, raw: rawDisks), daemon: try await driver.startDaemon(fx),
                firmware: firmware)
            do {
                try await guest.setUp(running: running, acpi: acpi)
                let value = try await body(fx, guest)
                await guest.tearDown()
                return value
            } catch {
                await guest.tearDown()
                throw error
            }
        }
    }

    /// `acpi` adds `<features><acpi/></features>` (see `TestGuest.xml`). A `sibling` finds the repository and the
    /// root's configuration made.
    private func setUp(running: Bool, acpi: Bool = false, sibling: Bool = false) async throws {
        if !sibling { try await makeRepository(repo) }
        if daemon == nil, !sibling {
            try FileManager.default.createDirectory(atPath: fx.path("etc"), withIntermediateDirectories: true)
            try FileFacts.create(fx.path("etc/qemu.conf"), with: Data(TestGuest.embeddedQemuConf.utf8))
        }
        for disk in disks {
            try await Qemu.create(image(disk.target), size: disk.size, format: disk.format, using: fx)
            try await Qemu.create(reference(disk.target), size: disk.size, format: "raw", using: fx)
        }
        let xml = TestGuest.xml(
            name: name,
            disks: disks.map { TestGuest.Disk(target: $0.target, path: image($0.target), format: $0.format) },
            acpi: acpi, firmware: firmware)
        let xmlPath = fx.path("\(filePrefix)domain.xml")
        try FileFacts.create(xmlPath, with: Data(xml.utf8))
        if daemon == nil { try CapabilitiesCache.seed(libvirtCache, for: .embedded) }
        try await virshChecked(["define", xmlPath])
        CapabilitiesCache.keep(libvirtCache, for: daemon == nil ? .embedded : .daemon)
        defined.withLock { $0 = true }
        if running {
            try await virshChecked(["start", name])
        }
    }

    /// `virsh -c URI ARGS...` (stderr carries libvirt's log lines: look at stdout).
    func virsh(_ arguments: [String]) async throws -> CommandResult {
        // virsh 9.0 sometimes dies of SIGSEGV on the embedded driver (seen right after a hotplug or a define);
        // a query that changes nothing is simply asked again.
        let queries: Set<String> = [
            "domstate", "dumpxml", "domblklist", "checkpoint-list", "domjobinfo", "list", "dominfo", "domuuid",
        ]
        var result = try await fx.run(["virsh", "-c", uri] + arguments, timeout: .seconds(60))
        var attempts = 1
        while result.signal == SIGSEGV, let verb = arguments.first, queries.contains(verb), attempts < 3 {
            result = try await fx.run(["virsh", "-c", uri] + arguments, timeout: .seconds(60))
            attempts += 1
        }
        return result
    }

    @discardableResult
    func virshChecked(_ arguments: [String]) async throws -> CommandResult {
        let result = try await virsh(arguments)
        guard result.succeeded else { throw HarnessError("virsh failed: \(result)") }
        return result
    }

    /// Writes through the running guest's own device with `qemu-io -d` over HMP (this marks the dirty bitmaps as a
    /// guest write would), and applies the same command to the disk's reference raw file.
    func write(_ target: String, _ commands: String...) async throws {
        guard let disk = disks.first(where: { $0.target == target }) else {
            throw HarnessError("no disk \(target)")
        }
        for command in commands {
            let result = try await virshChecked([
                "qemu-monitor-command", name, "--hmp", "qemu-io -d \(disk.device) \"\(command)\"",
            ])
            let said = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            if said.contains("failed") || said.lowercased().contains("error") {
                throw HarnessError("guest write `\(command)` on \(target): \(said)")
            }
        }
        try await writeReference(target, commands)
    }

    /// Writes to a shut-off guest's qcow2 image with `qemu-io -f qcow2` (and the same to the reference).
    func writeOffline(_ target: String, _ commands: String...) async throws {
        try await Qemu.io(image(target), format: format(of: target), commands, using: fx)
        try await writeReference(target, commands)
    }

    private func writeReference(_ target: String, _ commands: [String]) async throws {
        try await Qemu.io(reference(target), format: "raw", commands, using: fx)
    }

    /// Copies every reference raw to `ROOT/snap-<label>-<target>.raw` (sparse) and returns the paths by target.
    func snapshot(_ label: String) async throws -> [String: String] {
        var paths: [String: String] = [:]
        for disk in disks {
            let path = fx.path("snap-\(label)-\(filePrefix)\(disk.target).raw")
            try await fx.runChecked(["cp", "--sparse=always", reference(disk.target), path])
            paths[disk.target] = path
        }
        return paths
    }

    /// `virsh domjobinfo NAME` says there is no job.
    func expectNoJob(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let info = try await virsh(["domjobinfo", name])
        let typeLine = info.stdout.split(whereSeparator: \.isNewline).first { $0.contains("Job type:") }
        #expect(
            info.succeeded && typeLine?.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) == "None",
            "a job is left on the domain: \(info)", sourceLocation: sourceLocation)
    }

    /// `virsh domstate NAME`, trimmed.
    func state() async throws -> String {
        try await virshChecked(["domstate", name]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `virsh checkpoint-list NAME --name`.
    func checkpoints() async throws -> [String] {
        try await virshChecked(["checkpoint-list", name, "--name"]).stdout
            .split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// Like `write`, for a disk that is not in `disks` (attached later): `qemu-io -d DEVICE` over HMP, and the same
    /// commands on the raw file `reference`.
    func write(device: String, reference: String, _ commands: String...) async throws {
        for command in commands {
            let result = try await virshChecked([
                "qemu-monitor-command", name, "--hmp", "qemu-io -d \(device) \"\(command)\"",
            ])
            let said = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            if said.contains("failed") || said.lowercased().contains("error") {
                throw HarnessError("guest write `\(command)` on \(device): \(said)")
            }
        }
        try await Qemu.io(reference, format: "raw", commands, using: fx)
    }

    /// The pid of the guest's QEMU: from the `NAME.pid` file libvirt keeps under ROOT, else the `qemu-system`
    /// process whose command line names both the guest and ROOT. Nil when there is none.
    func qemuPid() -> pid_t? {
        if let walker = FileManager.default.enumerator(atPath: root) {
            for case let relative as String in walker where (relative as NSString).lastPathComponent == "\(name).pid" {
                if let text = try? String(contentsOfFile: "\(root)/\(relative)", encoding: .utf8),
                    let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0, kill(pid, 0) == 0
                {
                    return pid
                }
            }
        }
        let procs = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in procs {
            guard let pid = pid_t(entry),
                let raw = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline")
            else { continue }
            let line = String(decoding: raw.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
            if line.contains("qemu-system"), line.contains("guest=\(name)"), line.contains(root) {
                return pid
            }
        }
        return nil
    }

    /// `virsh destroy` and `virsh undefine --checkpoints-metadata` of another domain defined in this root (e.g. one
    /// made by `restore --define`), run to the end even when the test was cancelled, for teardown. `withState` adds
    /// `--nvram --tpm`, without which libvirt refuses to undefine a UEFI domain, and removes its TPM's state too.
    func removeDomain(_ other: String, withState: Bool = false) async {
        _ = await fx.runForTeardown(["virsh", "-c", uri, "destroy", other], label: "teardown-destroy-\(other)")
        _ = await fx.runForTeardown(
            ["virsh", "-c", uri, "undefine", other, "--checkpoints-metadata"]
                + (withState ? ["--nvram", "--tpm"] : []),
            label: "teardown-undefine-\(other)")
    }

    // MARK: pullback

    func pullback(_ arguments: [String], timeout: Duration = .seconds(120)) async throws -> CommandResult {
        try await fx.run([try Pullback.binaryPath()] + arguments, timeout: timeout)
    }

    /// `pullback ARGS...` inside the daemon's mount namespace (``LibvirtDaemon/inNamespace(_:)``), so that it finds
    /// a domain's NVRAM and TPM state at the paths libvirt names; as ``pullback(_:timeout:)`` without a daemon.
    func pullbackBesideLibvirt(_ arguments: [String], timeout: Duration = .seconds(120)) async throws
        -> CommandResult
    {
        let command = [try Pullback.binaryPath()] + arguments
        return try await fx.run(try daemon?.inNamespace(command) ?? command, timeout: timeout)
    }

    // MARK: firmware state

    /// `virsh domuuid DOMAIN` (this guest's by default), trimmed.
    func uuid(of domain: String? = nil) async throws -> String {
        try await virshChecked(["domuuid", domain ?? name]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The path `<os><nvram>` of DOMAIN's XML (this guest's by default) names, as libvirt sees it, or nil when it
    /// names none.
    func nvramPath(of domain: String? = nil) async throws -> String? {
        let xml = try await virshChecked(["dumpxml", domain ?? name]).stdout
        guard let open = xml.range(of: "<nvram"), let close = xml[open.upperBound...].range(of: ">") else {
            return nil
        }
        // `<nvram template='...'/>` names no file.
        guard !xml[open.upperBound..<close.lowerBound].hasSuffix("/"),
            let end = xml[close.upperBound...].range(of: "</nvram>")
        else { return nil }
        return String(xml[close.upperBound..<end.lowerBound])
    }

    /// Where this test reads a file libvirt names `path` (``LibvirtDaemon/outside(_:)``; the same path without a
    /// daemon).
    func outside(_ path: String) -> String { daemon?.outside(path) ?? path }

    /// The folder of the TPM 2.0 state swtpm keeps for the domain with uuid `uuid`, as this test sees it:
    /// `/var/lib/libvirt/swtpm/UUID/tpm2` of the daemon, `ROOT/lib/swtpm/UUID/tpm2` of the embedded driver.
    func tpmStateFolder(uuid: String) -> String {
        (daemon.map { $0.dir + "/lib" } ?? fx.path("lib")) + "/swtpm/\(uuid)/tpm2"
    }

    /// `pullback backup NAME --repo REPO --connect URI --json EXTRA...`, after `pullback init --repo REPO` when REPO
    /// is not a repository yet.
    func backup(_ extra: [String] = [], repo: String? = nil) async throws -> CommandResult {
        let repo = repo ?? self.repo
        if !FileFacts.exists(repo + "/repository.json") { try await makeRepository(repo) }
        return try await pullback(["backup", name, "--repo", repo, "--connect", uri, "--json"] + extra)
    }

    /// `pullback init --repo REPO`, which must succeed.
    func makeRepository(_ repo: String) async throws {
        try requireSuccess(try await pullback(["init", "--repo", repo]))
    }

    /// Starts `pullback backup` of the guest into its repository at the lowest CPU priority (``lowPriority``), for a
    /// test that acts while it runs.
    func startBackup(_ extra: [String] = []) throws -> ChildProcess {
        try fx.spawn(
            Self.lowPriority + [try Pullback.binaryPath(), "backup", name, "--repo", repo, "--connect", uri, "--json"]
                + extra,
            label: "pullback-backup")
    }

    /// The prefix that runs a command a test must catch mid-way at the lowest CPU priority (`nice -n 19`, which
    /// execs it: the child's pid is the command's): on a loaded machine the command then slows down rather than the
    /// test that watches it.
    static let lowPriority = ["nice", "-n", "19"]

    /// `pullback list --repo REPO --json`, decoded.
    func list(repo: String? = nil) async throws -> [ListedPoint] {
        let result = try await pullback(["list", "--repo", repo ?? self.repo, "--json"])
        try requireSuccess(result)
        do {
            return try JSONDecoder().decode([ListedPoint].self, from: Data(result.stdout.utf8))
        } catch {
            throw HarnessError("cannot decode list --json output \(result.stdout): \(error)")
        }
    }

    // MARK: teardown

    /// `virsh destroy` and `virsh undefine --checkpoints-metadata`, run to the end even when the test was cancelled.
    func tearDown() async {
        for sibling in siblings.withLock({ $0 }) { await sibling.tearDown() }
        guard defined.withLock({ $0 }) else { return }
        _ = await fx.runForTeardown(["virsh", "-c", uri, "destroy", name], label: "teardown-destroy")
        _ = await fx.runForTeardown(
            ["virsh", "-c", uri, "undefine", name, "--checkpoints-metadata"]
                + (firmware == .uefiTPM ? ["--nvram", "--tpm"] : []), label: "teardown-undefine")
        defined.withLock { $0 = false }
    }
}

/// Which of libvirt's QEMU drivers a test guest runs under.
enum LibvirtDriver: String, Sendable, CustomTestStringConvertible {
    /// `qemu:///embed?root=ROOT`, inside each `virsh` or `pullback` process.
    case embedded
    /// `qemu:///system` of a private libvirtd (`LibvirtDaemon`).
    case daemon
    /// The same libvirtd, also on `qemu+tcp://127.0.0.1:PORT/system`, with TLS certificates for backups' NBD exports
    /// (`LibvirtDaemon.start(_:remote:)`). The guest's `uri` stays the unix socket; `tcpURI` is the TCP one.
    case remoteDaemon

    var testDescription: String { rawValue }

    /// The daemon a guest under this driver runs under; nil for `.embedded`.
    func startDaemon(_ fx: Fixture) async throws -> LibvirtDaemon? {
        switch self {
        case .embedded: nil
        case .daemon: try await LibvirtDaemon.start(fx)
        case .remoteDaemon: try await LibvirtDaemon.start(fx, remote: try await TLSCertificates.make(fx))
        }
    }
}

/// One JSON object of `pullback backup --json`.
struct BackupSummary: Decodable, Sendable {
    struct DiskSummary: Decodable, Sendable {
        let target: String
        let mode: String
        let bytesRead: Int64

        enum CodingKeys: String, CodingKey {
            case target, mode
            case bytesRead = "bytes_read"
        }
    }

    struct Skipped: Decodable, Sendable {
        let target: String
        let reason: String
    }

    let checkpoint: String
    let disks: [DiskSummary]
    let domain: String
    let level: String
    let parent: String?
    let point: String
    let reason: String
    let seconds: Double
    let skipped: [Skipped]

    func disk(_ target: String) -> DiskSummary? { disks.first { $0.target == target } }

    static func decode(_ result: CommandResult) throws -> BackupSummary {
        let text = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.hasPrefix("{"), text.hasSuffix("}"), !text.contains("\n") else {
            throw HarnessError("backup --json stdout is not one JSON line: \(result)")
        }
        do {
            return try JSONDecoder().decode(BackupSummary.self, from: Data(text.utf8))
        } catch {
            throw HarnessError("cannot decode backup --json output \(text): \(error)")
        }
    }
}

/// One element of `pullback list --json`.
struct ListedPoint: Decodable, Sendable {
    let domain: String
    let id: String
    let level: String
    let finished: String
    let disks: [String]
    let bytes: Int64
    let parent: String?
    /// How the point's images are compressed, when they are.
    let compression: String?
    /// The domain's state files kept in the point (its NVRAM, its TPM's files); absent when it has none.
    let state: [StateFile]?

    /// One element of a row's `state`.
    struct StateFile: Decodable, Sendable, Equatable {
        /// `nvram` or `tpm`.
        let kind: String
        /// The file's object in the point: `nvram.fd`, `tpm2-00.permall`.
        let file: String
        let bytes: Int64
    }
}
