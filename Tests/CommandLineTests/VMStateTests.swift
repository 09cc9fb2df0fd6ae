import Foundation
import Testing

extension BackupIntegration {
    /// A UEFI guest's state beyond its disks: a backup of a domain on a local connection keeps, in each point, the
    /// NVRAM OVMF writes its variables to and the files of its emulated TPM (swtpm's `tpm2-00.permall`), whole and
    /// digested; a restore gives them back byte for byte, and with `--define` where the new domain finds them, so that
    /// the firmware and swtpm start on them. Real OVMF, real swtpm, under a private libvirtd: the embedded driver
    /// sometimes kills a UEFI+TPM domain when another process connects.
    ///
    /// libvirt names the NVRAM and the TPM's state under `/var/lib/libvirt`, which for the private daemon is a folder
    /// of the fixture mounted in its own namespace: pullback runs there (``LibvirtGuest/pullbackBesideLibvirt(_:timeout:)``)
    /// to find them, and the test reads them from outside at the folder's own path.
    @Suite("NVRAM and TPM state in points (UEFI guest with swtpm, private libvirtd)", .serialized)
    struct VMStateTests {
        static let firstCopy = "pb-state-a"
        static let secondCopy = "pb-state-b"
        static let damagedCopy = "pb-state-damaged"
        static let unstartableCopy = "pb-state-unstartable"
        static let sealedCopy = "pb-state-sealed"
        static let permall = "tpm2-00.permall"

        /// A domain's NVRAM and TPM state file, as this test reads them.
        struct State: Equatable {
            let nvram: Data
            let permall: Data

            /// What `list --json` says of a point holding this state.
            var listed: [ListedPoint.StateFile] {
                [
                    .init(kind: "nvram", file: "nvram.fd", bytes: Int64(nvram.count)),
                    .init(kind: "tpm", file: VMStateTests.permall, bytes: Int64(permall.count)),
                ]
            }
        }

        /// OVMF's variable store template, which libvirt copies into a new domain's NVRAM.
        static func template() throws -> Data { try FileFacts.contents(TestGuest.ovmfVarsTemplate) }

        /// Where this test reads DOMAIN's (the guest's by default) NVRAM and TPM state file.
        static func statePaths(_ guest: LibvirtGuest, domain: String? = nil) async throws -> (
            nvram: String, permall: String
        ) {
            let nvram = try #require(try await guest.nvramPath(of: domain), "\(domain ?? guest.name) has no <nvram>")
            let uuid = try await guest.uuid(of: domain)
            return (guest.outside(nvram), guest.tpmStateFolder(uuid: uuid) + "/" + permall)
        }

        /// DOMAIN's (the guest's by default) NVRAM and TPM state file as they are now.
        static func readState(_ guest: LibvirtGuest, domain: String? = nil) async throws -> State {
            let paths = try await statePaths(guest, domain: domain)
            return State(nvram: try FileFacts.contents(paths.nvram), permall: try FileFacts.contents(paths.permall))
        }

        /// Waits until the running guest's firmware has booted far enough: its NVRAM differs from `previous` (the
        /// template on a first start, the last point's NVRAM after a restart), its TPM's state file exists, and the
        /// NVRAM has not changed for 4 s. OVMF under TCG writes its variables within ~10 s of a start; a backup taken
        /// earlier would race it, and the bytes read after the backup would not be the point's.
        static func waitUntilSettled(_ guest: LibvirtGuest, differingFrom previous: Data) async throws -> State {
            let paths = try await statePaths(guest)
            let clock = ContinuousClock()
            var last = Data()
            var since = clock.now
            var state: State?
            let settled = try await waitUntil(timeout: .seconds(120), every: .milliseconds(250)) {
                guard let nvram = FileManager.default.contents(atPath: paths.nvram),
                    let permall = FileManager.default.contents(atPath: paths.permall), nvram != previous
                else { return false }
                if nvram != last {
                    (last, since) = (nvram, clock.now)
                    return false
                }
                state = State(nvram: nvram, permall: permall)
                return clock.now - since >= .seconds(4)
            }
            guard settled, let state else {
                throw HarnessError(
                    "the NVRAM \(paths.nvram) (\(last.count) bytes) did not change from what it was and settle, or \(paths.permall) is missing"
                )
            }
            return state
        }

        /// `pullback backup --json` of the guest inside the daemon's namespace, which must succeed, decoded.
        static func backup(
            _ guest: LibvirtGuest, repo: String? = nil, _ extra: [String] = [],
            sourceLocation: SourceLocation = #_sourceLocation
        ) async throws -> BackupSummary {
            let result = try await guest.pullbackBesideLibvirt(
                ["backup", guest.name, "--repo", repo ?? guest.repo, "--connect", guest.uri, "--json"] + extra)
            try requireSuccess(result, sourceLocation: sourceLocation)
            return try BackupSummary.decode(result)
        }

        /// `restore --at POINT --to FOLDER --define DOMAIN`, inside the daemon's namespace (where the new domain's TPM
        /// state is written).
        static func restoreDefining(
            _ guest: LibvirtGuest, at point: String, to folder: String, define domain: String, repo: String? = nil,
            _ extra: [String] = []
        ) async throws -> CommandResult {
            try await guest.pullbackBesideLibvirt(
                [
                    "restore", guest.name, "--repo", repo ?? guest.repo, "--at", point, "--to", folder, "--define",
                    domain, "--connect", guest.uri,
                ] + extra)
        }

        /// Runs `body`, then removes the domains `names` (with their NVRAM and TPM state) whatever happened.
        static func removingAfterwards<T>(
            _ guest: LibvirtGuest, _ names: [String], _ body: () async throws -> T
        ) async throws -> T {
            do {
                let value = try await body()
                for name in names { await guest.removeDomain(name, withState: true) }
                return value
            } catch {
                for name in names { await guest.removeDomain(name, withState: true) }
                throw error
            }
        }

        /// The file at `path` holds `expected` and has mode `mode`.
        static func expectFile(
            _ path: String, holds expected: Data, mode: UInt32 = 0o600, _ what: String,
            sourceLocation: SourceLocation = #_sourceLocation
        ) {
            let bytes = FileManager.default.contents(atPath: path)
            #expect(
                bytes == expected, "\(what): \(path) holds \(bytes.map { "\($0.count) other bytes" } ?? "nothing")",
                sourceLocation: sourceLocation)
            let actual = FileFacts.mode(path)
            #expect(
                actual == mode,
                "\(what): \(path) has mode \(actual.map { String($0, radix: 8) } ?? "none"), not \(String(mode, radix: 8))",
                sourceLocation: sourceLocation)
        }

        /// The domain `domain` restored with `--define` into `folder` has `state`: `FOLDER/nvram.fd` holds the NVRAM
        /// and the new domain's `<nvram>` names it, its TPM's state folder holds the state file; then it starts (OVMF
        /// and swtpm accept both) and runs, and is stopped again.
        static func expectDefinedWithState(
            _ guest: LibvirtGuest, domain: String, folder: String, _ state: State, label: String,
            sourceLocation: SourceLocation = #_sourceLocation
        ) async throws {
            expectFile(folder + "/nvram.fd", holds: state.nvram, "\(label) NVRAM", sourceLocation: sourceLocation)
            let named = try await guest.nvramPath(of: domain)
            #expect(
                named == folder + "/nvram.fd", "\(label): <nvram> of \(domain) names \(named ?? "nothing")",
                sourceLocation: sourceLocation)
            let uuid = try await guest.uuid(of: domain)
            let tpm = guest.tpmStateFolder(uuid: uuid)
            expectFile(tpm + "/" + permall, holds: state.permall, "\(label) TPM state", sourceLocation: sourceLocation)
            let started = try await guest.virsh(["start", domain])
            #expect(started.succeeded, "\(label): \(started)", sourceLocation: sourceLocation)
            let running = try await guest.virshChecked(["domstate", domain]).stdout
            #expect(running.contains("running"), "\(label): \(domain) is \(running)", sourceLocation: sourceLocation)
            // Had libvirt found no state, it would have run swtpm_setup, which logs the domain's uuid.
            let daemon = try #require(guest.daemon, sourceLocation: sourceLocation)
            let log = (try? String(contentsOfFile: daemon.swtpmLog(domain), encoding: .utf8)) ?? ""
            #expect(
                !log.contains("--vmid \(domain):\(uuid)"),
                "\(label): libvirt made a new TPM for \(domain) instead of starting on the restored state: \(log)",
                sourceLocation: sourceLocation)
            // Two UEFI guests under TCG on a small machine: the copy is stopped once it has shown that it runs.
            _ = try await guest.virsh(["destroy", domain])
        }

        /// `sha256:<hex>` of `bytes`, as `sha256sum` gives it (of a copy in the fixture).
        static func digest(_ fx: Fixture, _ bytes: Data) async throws -> String {
            let path = fx.path("digest-\(UInt32.random(in: 0...UInt32.max))")
            try FileFacts.create(path, with: bytes)
            defer { try? FileManager.default.removeItem(atPath: path) }
            return "sha256:" + (try await fx.runChecked(["sha256sum", path]).stdout.prefix(64))
        }

        /// The manifest of point `point` lists `state` with the sizes and the digests of its bytes, and the point's
        /// objects hold those bytes (the repository is not encrypted).
        static func expectManifestState(
            _ guest: LibvirtGuest, point: String, _ state: State, sourceLocation: SourceLocation = #_sourceLocation
        ) async throws {
            let folder = "\(guest.repo)/\(guest.name)/\(point)"
            let manifest = try #require(
                try JSONSerialization.jsonObject(with: FileFacts.contents(folder + "/manifest.json")) as? [String: Any],
                sourceLocation: sourceLocation)
            let entries = (manifest["state"] as? [[String: Any]]) ?? []
            for (kind, file, bytes) in [("nvram", "nvram.fd", state.nvram), ("tpm", permall, state.permall)] {
                let entry = entries.first { $0["kind"] as? String == kind }
                let digest = try await digest(guest.fx, bytes)
                #expect(
                    entry?["file"] as? String == file && entry?["size"] as? Int == bytes.count
                        && entry?["digest"] as? String == digest,
                    "\(point) \(kind): \(entries)", sourceLocation: sourceLocation)
                #expect(
                    FileManager.default.contents(atPath: folder + "/" + file) == bytes, "\(point): \(file)",
                    sourceLocation: sourceLocation)
            }
        }

        /// The names under the daemon's swtpm storage folder (one per domain uuid that has TPM state).
        static func tpmFolders(_ guest: LibvirtGuest) throws -> [String] {
            let daemon = try #require(guest.daemon)
            return (try? FileFacts.listing(daemon.dir + "/lib/swtpm")) ?? []
        }

        @Test(
            "a running UEFI guest with a TPM: each point keeps its NVRAM and TPM state as they were; list shows them; restore --define of either point gives the new domain those bytes, and it starts on them; a plain restore writes them into the folder; a damaged nvram.fd fails verify and restore, which defines nothing; a copy that cannot start is undefined again",
            .timeLimit(.minutes(5)))
        func keptAndRestored() async throws {
            try await LibvirtGuest.run(driver: .daemon, firmware: .uefiTPM) { fx, guest in
                let copies = [Self.firstCopy, Self.secondCopy, Self.damagedCopy, Self.unstartableCopy]
                try await Self.removingAfterwards(guest, copies) {
                    _ = try await Self.waitUntilSettled(guest, differingFrom: try Self.template())
                    // The control for the restored domains' check: libvirt made this guest's TPM, and its log says so.
                    let setupLog = try #require(guest.daemon).swtpmLog(guest.name)
                    let made = (try? String(contentsOfFile: setupLog, encoding: .utf8)) ?? ""
                    #expect(made.contains("--vmid \(guest.name):\(try await guest.uuid())"), "\(setupLog): \(made)")
                    try await guest.write("vda", "write -P 0x5a 1M 64k")
                    let full = try await Self.backup(guest)
                    #expect(full.level == "full", "\(full)")
                    let a = try await Self.readState(guest)

                    // A restart: swtpm saves a new state and OVMF writes its variables again.
                    try await guest.virshChecked(["destroy", guest.name])
                    try await guest.virshChecked(["start", guest.name])
                    _ = try await Self.waitUntilSettled(guest, differingFrom: a.nvram)
                    try await guest.write("vda", "write -P 0x6b 2M 64k")
                    let incremental = try await Self.backup(guest)
                    #expect(incremental.level == "incremental", "\(incremental)")
                    let b = try await Self.readState(guest)
                    // Otherwise the test could not tell the points' states apart.
                    try #require(a.permall != b.permall, "the TPM's state did not change across a restart")
                    try #require(a.nvram != b.nvram, "the NVRAM did not change across a restart")

                    let rows = try await guest.list()
                    #expect(rows.map(\.id) == [full.point, incremental.point], "\(rows)")
                    for (row, state) in zip(rows, [a, b]) {
                        #expect(
                            row.state?.sorted { $0.file < $1.file } == state.listed,
                            "\(row.id): \(row.state.map { "\($0)" } ?? "no state")")
                    }
                    try await Self.expectManifestState(guest, point: full.point, a)
                    try await Self.expectManifestState(guest, point: incremental.point, b)

                    let first = fx.target("copy-a")
                    try requireSuccess(
                        try await Self.restoreDefining(guest, at: full.point, to: first, define: Self.firstCopy))
                    try await Self.expectDefinedWithState(guest, domain: Self.firstCopy, folder: first, a, label: "A")

                    let second = fx.target("copy-b")
                    try requireSuccess(
                        try await Self.restoreDefining(
                            guest, at: incremental.point, to: second, define: Self.secondCopy))
                    try await Self.expectDefinedWithState(
                        guest, domain: Self.secondCopy, folder: second, b, label: "B")

                    // Without --define: the state goes into the folder, the TPM's under tpm2/.
                    let plain = fx.target("plain-b")
                    try requireSuccess(
                        try await guest.pullback([
                            "restore", guest.name, "--repo", guest.repo, "--at", incremental.point, "--to", plain,
                        ]))
                    Self.expectFile(plain + "/nvram.fd", holds: b.nvram, "plain restore's NVRAM")
                    Self.expectFile(plain + "/tpm2/" + Self.permall, holds: b.permall, "plain restore's TPM state")
                    #expect(FileFacts.mode(plain + "/tpm2") == 0o700, "tpm2/ is not 0700")

                    let verify = try await guest.pullbackBesideLibvirt(["verify", "--repo", guest.repo, guest.name])
                    #expect(verify.succeeded, "\(verify)")

                    // One byte of the last point's NVRAM changed in the repository.
                    let object = "\(guest.repo)/\(guest.name)/\(incremental.point)/nvram.fd"
                    let byte = try FileFacts.bytes(object, at: 4096, count: 1)
                    try FileFacts.overwrite(object, at: 4096, with: Data(byte.map { ~$0 }))
                    let damaged = try await guest.pullbackBesideLibvirt(["verify", "--repo", guest.repo, guest.name])
                    #expect(
                        !damaged.succeeded && (damaged.stdout + damaged.stderr).contains("nvram.fd"),
                        "verify of a damaged nvram.fd: \(damaged)")

                    let foldersBefore = try Self.tpmFolders(guest)
                    let refused = try await Self.restoreDefining(
                        guest, at: incremental.point, to: fx.target("copy-damaged"), define: Self.damagedCopy)
                    expectCleanFailure(refused, mentioning: ["nvram.fd"])
                    let domains = try await guest.virshChecked(["list", "--all", "--name"]).stdout
                    #expect(!domains.contains(Self.damagedCopy), "a failed restore defined its domain: \(domains)")
                    #expect(try Self.tpmFolders(guest) == foldersBefore, "a failed restore left TPM state")

                    // A copy that cannot start (point A's saved XML edited to ask for 900 TiB) is undefined again,
                    // though libvirt refuses a plain undefine of a UEFI domain whose NVRAM file exists.
                    try Self.askForTooMuchMemory(in: "\(guest.repo)/\(guest.name)/\(full.point)/domain.xml")
                    let live = fx.target("copy-unstartable")
                    let unstartable = try await Self.restoreDefining(
                        guest, at: full.point, to: live, define: Self.unstartableCopy, ["--live"])
                    #expect(
                        unstartable.exitCode == 1 && unstartable.stderr.contains("cannot start domain"),
                        "\(unstartable)")
                    let left = try await guest.virshChecked(["list", "--all", "--name"]).stdout
                    #expect(!left.contains(Self.unstartableCopy), "an unstartable copy stayed defined: \(left)")
                    #expect(try Self.tpmFolders(guest) == foldersBefore, "an unstartable copy left TPM state")
                    #expect(!FileFacts.exists(live), "the live restore's folder stayed")
                }
            }
        }

        /// Rewrites the saved domain XML at `path` to ask for 900 TiB of memory, which QEMU cannot start with.
        static func askForTooMuchMemory(in path: String) throws {
            let xml = try String(contentsOfFile: path, encoding: .utf8)
            var edited = xml
            for element in ["memory", "currentMemory"] {
                edited = edited.replacingOccurrences(
                    of: "<\(element) unit='KiB'>[0-9]+</\(element)>", with: "<\(element) unit='TiB'>900</\(element)>",
                    options: .regularExpression)
            }
            try #require(edited != xml, "no <memory> in \(path)")
            try Data(edited.utf8).write(to: URL(fileURLWithPath: path))
        }

        /// A 4 KiB slice of `nvram` that tells it apart: one OVMF wrote (it differs from the template there) and not a
        /// single byte repeated (erased flash is all 0xff); the first 4 KiB (the firmware volume's header) if none.
        static func telltaleSlice(of nvram: Data, template: Data) -> Data {
            let size = 4 * kib
            for offset in stride(from: 0, to: nvram.count - size + 1, by: size) {
                let slice = nvram.subdata(in: offset..<offset + size)
                let original = offset + size <= template.count ? template.subdata(in: offset..<offset + size) : Data()
                if slice != original, Set(slice).count > 8 { return slice }
            }
            return nvram.prefix(size)
        }

        @Test(
            "an encrypted repository: the point's nvram.fd is sealed, none of the NVRAM's bytes are in the clear, and restore --define gives them back",
            .timeLimit(.minutes(5)))
        func sealed() async throws {
            try await LibvirtGuest.run(driver: .daemon, firmware: .uefiTPM) { fx, guest in
                try await Self.removingAfterwards(guest, [Self.sealedCopy]) {
                    let key = try EncryptedBackupTests.rawKeyFile(fx, "key")
                    let repo = fx.path("sealed")
                    try requireSuccess(
                        try await guest.pullback(["init", "--repo", repo, "--encrypt", "--key-file", key]))
                    let template = try Self.template()
                    _ = try await Self.waitUntilSettled(guest, differingFrom: template)
                    let point = try await Self.backup(guest, repo: repo, ["--key-file", key])
                    let state = try await Self.readState(guest)

                    let path = "\(repo)/\(guest.name)/\(point.point)/nvram.fd"
                    let object = FileManager.default.contents(atPath: path)
                    let slice = Self.telltaleSlice(of: state.nvram, template: template)
                    try #require(Set(slice).count > 1, "no slice of the NVRAM tells it apart")
                    #expect(object?.starts(with: EncryptedBackupTests.sealedMagic) == true, "\(path) is not sealed")
                    #expect(object?.range(of: slice) == nil, "\(path) holds the NVRAM's bytes in the clear")

                    let folder = fx.target("copy-sealed")
                    try requireSuccess(
                        try await Self.restoreDefining(
                            guest, at: point.point, to: folder, define: Self.sealedCopy, repo: repo,
                            ["--key-file", key]))
                    Self.expectFile(folder + "/nvram.fd", holds: state.nvram, "NVRAM from the sealed point")
                    let tpm = guest.tpmStateFolder(uuid: try await guest.uuid(of: Self.sealedCopy))
                    Self.expectFile(tpm + "/" + Self.permall, holds: state.permall, "TPM state from the sealed point")
                }
            }
        }

        @Test(
            "over qemu+tcp the NVRAM and TPM state are out of reach: the backup says so once on stderr, backs up the disks, and the point lists no state",
            .timeLimit(.minutes(5)))
        func remote() async throws {
            try await LibvirtGuest.run(driver: .remoteDaemon, firmware: .uefiTPM) { fx, guest in
                // There is state to leave out: the firmware has written its variables.
                _ = try await Self.waitUntilSettled(guest, differingFrom: try Self.template())
                try await guest.write("vda", "write -P 0x5a 1M 128k")
                try await guest.write("vdb", "write -P 0x22 0 1M")
                // Inside the daemon's namespace pullback could read the files; over a remote URI it must not.
                let result = try await guest.pullbackBesideLibvirt(try RemoteBackupTests.remoteArguments(guest))
                try requireSuccess(result)
                let notes = result.stderrLines.filter { $0.contains("NVRAM and TPM state") }
                #expect(notes.count == 1, "one note on stderr: \(result)")
                let summary = try BackupSummary.decode(result)
                try await BackupTests.expectRestores(
                    guest, at: summary.point, matching: try await guest.snapshot("remote"), label: "remote")
                let rows = try await guest.list()
                #expect(rows.count == 1 && rows.first?.state == nil, "\(rows)")
                let folder = "\(guest.repo)/\(guest.name)/\(summary.point)"
                let manifest = try JSONSerialization.jsonObject(with: FileFacts.contents(folder + "/manifest.json"))
                #expect((manifest as? [String: Any])?["state"] == nil, "\(manifest)")
                #expect(!FileFacts.exists(folder + "/nvram.fd"), "a remote point holds nvram.fd")
            }
        }
    }
}
