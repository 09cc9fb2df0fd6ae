import Foundation
import Testing

extension CopyIntegration {
    /// `pullback restore` checks what it restores and leaves the `--to` folder either with every image of the point or
    /// as it was: a damaged image, an interruption, a domain name that is taken or an image already there stops it
    /// before anything is written, or removes what it wrote.
    @Suite("restore checks what it restores (embedded libvirt)", .serialized)
    struct RestoreCheckTests {
        /// `pullback restore --repo REPO NAME --to FOLDER --format raw EXTRA...`.
        static func restore(_ guest: LibvirtGuest, to folder: String, _ extra: [String] = []) async throws
            -> CommandResult
        {
            try await guest.pullback(
                ["restore", "--repo", guest.repo, guest.name, "--to", folder, "--format", "raw"] + extra)
        }

        /// What `folder` holds, nothing when it does not exist.
        static func contents(_ folder: String) -> [String] {
            (try? FileFacts.listing(folder)) ?? []
        }

        @Test(
            "An image with 4 damaged bytes: exit 1 naming it, --to left empty; --no-verify restores it as it is",
            .timeLimit(.minutes(3)))
        func damagedImage() async throws {
            try await LibvirtGuest.run { fx, guest in
                try await guest.write("vda", "write -P 0x31 0 8M")
                try await guest.write("vdb", "write -P 0x32 1M 64k")
                let (full, _) = try await BackupTests.backup(guest)
                try await guest.write("vdb", "write -P 0x34 8M 64k")
                _ = try await BackupTests.backup(guest)

                // In the middle of the full point's vda data, which the incremental point does not replace.
                let damaged = "\(guest.repo)/\(guest.name)/\(full.point)/vda.qcow2"
                let offset = UInt64(try FileFacts.size(damaged) / 2)
                let bytes = try FileFacts.bytes(damaged, at: offset, count: 4)
                try FileFacts.overwrite(damaged, at: offset, with: Data(bytes.map { $0 ^ 0xff }))

                let out = fx.path("out")
                let refused = try await Self.restore(guest, to: out)
                expectCleanFailure(refused, mentioning: [damaged, "--no-verify"])
                #expect(Self.contents(out).isEmpty, "the refused restore wrote into --to")

                try requireSuccess(try await Self.restore(guest, to: out, ["--no-verify"]))
                #expect(try FileFacts.listing(out) == ["vda.raw", "vdb.raw"])
                try await expectSameBytes(fx, out + "/vdb.raw", guest.reference("vdb"))
                let compared = try await fx.run(["cmp", out + "/vda.raw", guest.reference("vda")])
                #expect(compared.exitCode == 1, "the damage is not in the image restored as it is: \(compared)")
            }
        }

        @Test(
            "Damage where the restore reads nothing (a cluster the newer point replaces, the refcount table): refused all the same, --to left empty",
            .timeLimit(.minutes(3)))
        func damageNotRead() async throws {
            try await LibvirtGuest.run { fx, guest in
                try await guest.write("vda", "write -P 0x31 0 8M")
                let (full, _) = try await BackupTests.backup(guest)
                try await guest.write("vda", "write -P 0x41 0 1M")
                _ = try await BackupTests.backup(guest)

                let image = "\(guest.repo)/\(guest.name)/\(full.point)/vda.qcow2"
                let replaced = try #require(
                    try await Qemu.map(image, using: fx).first { $0.start == 0 && $0.data }?.offset,
                    "the full point's vda has no data at 0")
                let header = try FileFacts.bytes(image, at: 48, count: 8)
                let refcountTable = header.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                let out = fx.path("out")
                for offset in [UInt64(replaced) + 4096, refcountTable + 1] {
                    let bytes = try FileFacts.bytes(image, at: offset, count: 4)
                    try FileFacts.overwrite(image, at: offset, with: Data(bytes.map { $0 ^ 0xff }))
                    let refused = try await Self.restore(guest, to: out)
                    expectCleanFailure(refused, mentioning: [image, "does not match", "--no-verify"])
                    #expect(Self.contents(out).isEmpty, "the refused restore left \(Self.contents(out))")
                    try FileFacts.overwrite(image, at: offset, with: Data(bytes))
                }
                try requireSuccess(try await Self.restore(guest, to: out))
                try await expectSameBytes(fx, out + "/vda.raw", guest.reference("vda"))
            }
        }

        @Test(
            "SIGINT while one disk is written and another is done: exit 130, --to empty, the rerun restores",
            .timeLimit(.minutes(4)))
        func interruptedRerun() async throws {
            try await LibvirtGuest.run(disks: [("vda", 512 * mib), ("vdb", 32 * mib)]) { fx, guest in
                for chunk in 0..<6 { try await guest.write("vda", "write -P 0x4\(chunk) \(chunk * 64 * mib) 64M") }
                try await guest.write("vdb", "write -P 0x55 1M 1M")
                _ = try await BackupTests.backup(guest)

                let out = fx.path("out")
                let child = try fx.spawn(
                    LibvirtGuest.lowPriority + [
                        try Pullback.binaryPath(), "restore", "--repo", guest.repo, guest.name, "--to", out,
                        "--format", "raw",
                    ], label: "pullback-restore")
                // vdb's image written, under whatever name, and vda's still being written.
                let names = { Self.contents(out) }
                let vdbWritten = { names().contains { $0.contains("vdb.raw") && !$0.hasSuffix(".pullback-partial") } }
                try await TestSupport.waitUntil(timeout: .seconds(60), every: .milliseconds(1)) {
                    !child.isRunning || vdbWritten()
                }
                child.suspend()
                let frozen = names()
                try #require(child.isRunning, "the restore ended before it could be interrupted: \(child.result())")
                try #require(
                    frozen.contains { $0.contains("vda.raw") && $0.hasSuffix(".pullback-partial") },
                    "vda was not being written when the restore was stopped: \(frozen)")
                child.interrupt()
                child.resume()
                let interrupted = try await child.waitForExit(timeout: .seconds(30))
                expectCleanFailure(interrupted, exitCode: 130, mentioning: ["interrupted"])
                #expect(Self.contents(out).isEmpty, "the interrupted restore left \(Self.contents(out))")

                try requireSuccess(try await Self.restore(guest, to: out))
                #expect(try FileFacts.listing(out) == ["vda.raw", "vdb.raw"])
                try await expectSameBytes(fx, out + "/vda.raw", guest.reference("vda"))
                try await expectSameBytes(fx, out + "/vdb.raw", guest.reference("vdb"))
            }
        }

        @Test(
            "--define NAME of an existing domain: refused before anything is copied",
            .timeLimit(.minutes(3)))
        func defineExistingName() async throws {
            try await LibvirtGuest.run { fx, guest in
                try await guest.write("vda", "write -P 0x61 0 4M")
                _ = try await BackupTests.backup(guest)
                let out = fx.path("out")
                let refused = try await guest.pullback([
                    "restore", "--repo", guest.repo, guest.name, "--to", out, "--define", guest.name, "--connect",
                    guest.uri,
                ])
                expectCleanFailure(refused, mentioning: [guest.name, "exists", "--define"])
                #expect(Self.contents(out).isEmpty, "the refused restore wrote \(Self.contents(out))")
                #expect(try await guest.state() == "running", "the existing domain was touched")
            }
        }

        @Test(
            "Images already in --to: refused naming --overwrite only; --overwrite replaces them, a link there too",
            .timeLimit(.minutes(3)))
        func overwrite() async throws {
            try await LibvirtGuest.run { fx, guest in
                try await guest.write("vda", "write -P 0x71 0 2M")
                try await guest.write("vdb", "write -P 0x72 0 2M")
                _ = try await BackupTests.backup(guest)
                let out = fx.path("out")
                try requireSuccess(try await Self.restore(guest, to: out))
                let earlier = try FileFacts.contents(out + "/vda.raw")

                try await guest.write("vda", "write -P 0x73 1M 2M")
                try await guest.write("vdb", "write -P 0x74 4M 64k")
                _ = try await BackupTests.backup(guest)
                let refused = try await Self.restore(guest, to: out)
                expectCleanFailure(refused, mentioning: [out + "/vda.raw", "--overwrite"])
                #expect(!refused.stderr.contains("--bitmap"), "advice for an option restore does not have: \(refused)")
                #expect(try FileFacts.contents(out + "/vda.raw") == earlier, "a refused restore changed an image")

                // A symbolic link at an image's name is replaced, never written through.
                let victim = fx.path("victim")
                try FileFacts.create(victim, with: Data("not a disk".utf8))
                try FileManager.default.removeItem(atPath: out + "/vdb.raw")
                try FileManager.default.createSymbolicLink(atPath: out + "/vdb.raw", withDestinationPath: victim)

                try requireSuccess(try await Self.restore(guest, to: out, ["--overwrite"]))
                #expect(try FileFacts.listing(out) == ["vda.raw", "vdb.raw"])
                try await expectSameBytes(fx, out + "/vda.raw", guest.reference("vda"))
                try await expectSameBytes(fx, out + "/vdb.raw", guest.reference("vdb"))
                let link = try? FileManager.default.destinationOfSymbolicLink(atPath: out + "/vdb.raw")
                #expect(link == nil, "vdb.raw is still a link")
                #expect(try FileFacts.contents(victim) == Data("not a disk".utf8), "the link's target was written")
            }
        }
    }
}
