import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

extension CopyIntegration {
    /// The `.partial` folders that prune and backup remove at their start, raced by a process that keeps swapping a
    /// folder inside one for a symbolic link to a folder outside the repository holding files of the same names
    /// (`renameat2(RENAME_EXCHANGE)`, so each name exists at every instant). A removal that re-builds paths follows
    /// the link and deletes the outside files; one made through descriptors never leaves the tree.
    @Suite("removal of .partial folders raced by a writer", .serialized)
    struct RemovalRaceTests {
        /// Files in the raced folder, and as many in the outside folder: the number with which a path-based removal
        /// was seen to delete almost all the outside files.
        static let fileCount = 20_000

        /// Swaps the names `argv[1]` and `argv[2]` again and again until one of them is gone (the removal took it)
        /// or `argv[4]` seconds have passed; touches `argv[3]` after the first swap, and prints the number of swaps.
        static let racer = """
            import ctypes, errno, os, sys, time
            libc = ctypes.CDLL(None, use_errno=True)
            renameat2 = libc.renameat2
            renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
            AT_FDCWD, RENAME_EXCHANGE = -100, 2
            first, second, started = os.fsencode(sys.argv[1]), os.fsencode(sys.argv[2]), sys.argv[3]
            deadline = time.monotonic() + float(sys.argv[4])
            swaps = 0
            while swaps % 1000 != 0 or time.monotonic() < deadline:
                if renameat2(AT_FDCWD, first, AT_FDCWD, second, RENAME_EXCHANGE) != 0:
                    code = ctypes.get_errno()
                    if code == errno.ENOENT:
                        break
                    sys.exit("renameat2: " + os.strerror(code))
                swaps += 1
                if swaps == 1:
                    open(started, "w").close()
            print(swaps)
            """

        /// Rounds of each race: one is usually enough for a path-based removal to delete outside files, but on a
        /// busy machine the racer may not get to run during one removal.
        static let rounds = 3

        /// The outside folder's path and the raced `.partial` folder's, set up under `domainFolder` for `round`: the
        /// partial folder holds `d/` with ``fileCount`` files and `s`, a symbolic link to the outside folder, which
        /// holds files of the same names.
        static func plantPartial(_ fx: Fixture, in domainFolder: String, round: Int) throws
            -> (outside: String, partial: String)
        {
            let outside = try fx.makeDirectory("outside\(round)")
            let partial = domainFolder + "/2020010\(round)T000000Z.partial"
            try FileManager.default.createDirectory(atPath: partial + "/d", withIntermediateDirectories: true)
            for folder in [outside, partial + "/d"] {
                let descriptor = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                guard descriptor >= 0 else { throw HarnessError("cannot open \(folder)") }
                defer { close(descriptor) }
                for index in 0..<fileCount {
                    let file = openat(descriptor, String(format: "f%05d", index), O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
                    guard file >= 0 else { throw HarnessError("cannot create a file in \(folder)") }
                    close(file)
                }
            }
            try FileManager.default.createSymbolicLink(atPath: partial + "/s", withDestinationPath: outside)
            return (outside, partial)
        }

        /// Starts the racer on `partial`'s `d` and `s` and waits until it has swapped them once.
        static func startRacer(_ fx: Fixture, on partial: String, round: Int) async throws -> ChildProcess {
            let script = fx.path("racer.py")
            try racer.write(toFile: script, atomically: true, encoding: .utf8)
            let started = fx.path("racer-started\(round)")
            let child = try fx.spawn(
                ["python3", script, partial + "/d", partial + "/s", started, "60"], label: "racer")
            while !FileManager.default.fileExists(atPath: started) {
                guard child.isRunning else {
                    throw HarnessError("the racer ended before its first swap: \(child.result())")
                }
                try await Task.sleep(for: .milliseconds(5))
            }
            return child
        }

        static func count(_ folder: String) throws -> Int {
            try FileManager.default.contentsOfDirectory(atPath: folder).count
        }

        /// A repository with one committed point of `domain` (a manifest only: prune with `--keep 1` reads no image).
        static func makeRepository(_ fx: Fixture, domain: String) throws -> String {
            let repo = try fx.makeDirectory("repo")
            try #"{"id": "7d0c2a8e-1b3f-4c5d-9e6f-000000000001", "schema": 1}"#
                .write(toFile: repo + "/repository.json", atomically: true, encoding: .utf8)
            let point = repo + "/" + domain + "/20200101T000000Z"
            try FileManager.default.createDirectory(atPath: point, withIntermediateDirectories: true)
            let manifest = """
                {"schemaVersion": 1, "domainName": "\(domain)", "domainUUID": "5f1c3e0a-0000-4000-8000-000000000001",
                 "level": "full", "checkpoint": "pullback-race", "started": "2020-01-01T00:00:00Z",
                 "finished": "2020-01-01T00:01:00Z",
                 "disks": [{"target": "vda", "virtualSize": 1048576, "image": "vda.qcow2", "bytesCopied": 0}]}
                """
            try manifest.write(toFile: point + "/manifest.json", atomically: true, encoding: .utf8)
            return repo
        }

        /// Races `run` (a prune or a backup, which removes `.partial` folders at its start) ``rounds`` times, a new
        /// `.partial` folder each time, and expects every file outside the repository to be left and each folder
        /// removed.
        static func race(
            _ fx: Fixture, domainFolder: String, _ run: () async throws -> CommandResult
        ) async throws {
            for round in 1...rounds {
                let (outside, partial) = try plantPartial(fx, in: domainFolder, round: round)
                let racer = try await startRacer(fx, on: partial, round: round)
                let result = try await run()
                await racer.terminate()
                let left = try count(outside)
                #expect(left == fileCount, "round \(round): \(fileCount - left) files outside the repository removed")
                try requireSuccess(result)
                #expect(!FileManager.default.fileExists(atPath: partial), "round \(round): \(partial) is still there")
            }
        }

        @Test(
            "prune removes a raced .partial folder and not one file outside the repository",
            .timeLimit(.minutes(3)))
        func pruneRaced() async throws {
            try await Fixture.run { fx in
                let repo = try Self.makeRepository(fx, domain: "racer")
                try await Self.race(fx, domainFolder: repo + "/racer") {
                    // test:///default is libvirt's built-in test driver: the prune's last step finds no such domain
                    // there, and notes it.
                    try await fx.run([
                        try Pullback.binaryPath(), "prune", "--repo", repo, "racer", "--keep", "1", "--connect",
                        "test:///default",
                    ])
                }
            }
        }

        @Test(
            "a backup removes a raced .partial folder and not one file outside the repository",
            .timeLimit(.minutes(5)))
        func backupRaced() async throws {
            try await LibvirtGuest.run(disks: [("vda", 1 * mib)]) { fx, guest in
                try await Self.race(fx, domainFolder: guest.repo + "/" + guest.name) { try await guest.backup() }
            }
        }
    }
}
