import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

extension CopyIntegration {
    /// `pullback sync` between folder repositories, on real points of one TCG guest: the copies are the source's files
    /// byte for byte, restore as the source's points do and verify; only new points move; `--points latest` copies
    /// the chain the newest point needs; a damaged point and those based on it are named and not copied; a sync
    /// killed mid-copy is redone whole by the next run; a held target lock is one line naming its holder.
    @Suite("pullback sync", .serialized)
    struct SyncTests {
        /// `sync --json`, decoded.
        struct Report: Decodable {
            struct NotCopied: Decodable, Equatable {
                let point: String
                let reason: String
                let object: String?
                let basedOn: String?

                enum CodingKeys: String, CodingKey {
                    case point, reason, object
                    case basedOn = "based_on"
                }
            }

            struct Domain: Decodable {
                let domain: String
                let copied: [String]
                let present: Int
                let failed: [NotCopied]
                let skipped: [NotCopied]
                let bytes: UInt64
            }

            let source: String
            let target: String
            let domains: [Domain]
        }

        /// `pullback sync --from <the guest's repository> --to TARGET ARGUMENTS --json`.
        static func sync(_ guest: LibvirtGuest, to target: String, _ arguments: [String] = []) async throws
            -> CommandResult
        {
            try await guest.pullback(["sync", "--from", guest.repo, "--to", target, "--json"] + arguments)
        }

        /// The report of a sync of the guest's one domain.
        static func domain(_ result: CommandResult, sourceLocation: SourceLocation = #_sourceLocation) throws
            -> Report.Domain
        {
            let report = try JSONDecoder().decode(Report.self, from: Data(result.stdout.utf8))
            try #require(report.domains.count == 1, "\(result)", sourceLocation: sourceLocation)
            return report.domains[0]
        }

        /// The folder of point `id` of the guest's domain in `repo`.
        static func folder(_ guest: LibvirtGuest, _ id: String, in repo: String) -> String {
            "\(repo)/\(guest.name)/\(id)"
        }

        /// The bytes of the files of the source's points `ids`: what a sync of them copies.
        static func sourceBytes(_ guest: LibvirtGuest, _ ids: [String]) throws -> UInt64 {
            var total: Int64 = 0
            for id in ids {
                let folder = folder(guest, id, in: guest.repo)
                for name in try FileFacts.listing(folder) { total += try FileFacts.size("\(folder)/\(name)") }
            }
            return UInt64(total)
        }

        /// Point `id` in `repo` has exactly the source point's files, each byte for byte (`cmp`).
        static func expectSameFiles(
            _ guest: LibvirtGuest, _ id: String, in repo: String, sourceLocation: SourceLocation = #_sourceLocation
        ) async throws {
            let (source, copy) = (folder(guest, id, in: guest.repo), folder(guest, id, in: repo))
            let names = try FileFacts.listing(source)
            #expect(try FileFacts.listing(copy) == names, "\(id)", sourceLocation: sourceLocation)
            for name in names {
                try await expectSameBytes(
                    guest.fx, "\(copy)/\(name)", "\(source)/\(name)", sourceLocation: sourceLocation)
            }
        }

        /// `verify --at all` passes on `repo`, every image as committed.
        static func expectVerifies(
            _ guest: LibvirtGuest, _ repo: String, sourceLocation: SourceLocation = #_sourceLocation
        ) async throws {
            let verify = try await guest.pullback(["verify", "--repo", repo, guest.name, "--at", "all"])
            #expect(verify.succeeded, "verify \(repo): \(verify)", sourceLocation: sourceLocation)
            #expect(verify.stdout.contains(": all as committed"), "\(verify)", sourceLocation: sourceLocation)
        }

        /// Each point of `ids` restores (raw) from `repo` to the same bytes as from the source repository.
        static func expectRestoresAlike(
            _ guest: LibvirtGuest, _ ids: [String], from repo: String, sourceLocation: SourceLocation = #_sourceLocation
        ) async throws {
            for id in ids {
                var folders: [String] = []
                for (label, from) in [("source", guest.repo), ("copy", repo)] {
                    let folder = guest.fx.target("\(label)-\(id)")
                    let restore = try await guest.pullback([
                        "restore", "--repo", from, guest.name, "--at", id, "--to", folder, "--format", "raw",
                    ])
                    try requireSuccess(restore, sourceLocation: sourceLocation)
                    folders.append(folder)
                }
                for disk in guest.disks {
                    try await expectSameBytes(
                        guest.fx, "\(folders[1])/\(disk.target).raw", "\(folders[0])/\(disk.target).raw",
                        sourceLocation: sourceLocation)
                }
                for folder in folders { try? FileManager.default.removeItem(atPath: folder) }
            }
        }

        /// The bytes allocated in the staging folders of the guest's domain in `repo`: what a sync has written of
        /// points it has not committed.
        static func stagedBytes(_ guest: LibvirtGuest, in repo: String) -> Int64 {
            let domain = "\(repo)/\(guest.name)"
            var total: Int64 = 0
            for staging in ((try? FileFacts.listing(domain)) ?? []) where staging.hasSuffix(".partial") {
                for name in (try? FileFacts.listing("\(domain)/\(staging)")) ?? [] {
                    total += (try? FileFacts.allocated("\(domain)/\(staging)/\(name)")) ?? 0
                }
            }
            return total
        }

        /// Flips one byte in the middle of `path` and returns a function that puts it back.
        static func flipByte(_ path: String) throws -> () throws -> Void {
            let offset = UInt64(try FileFacts.size(path) / 2)
            let byte = try FileFacts.bytes(path, at: offset, count: 1)
            try FileFacts.overwrite(path, at: offset, with: Data([byte[0] ^ 0xff]))
            return { try FileFacts.overwrite(path, at: offset, with: byte) }
        }

        @Test(
            "Folder to folder: copies identical to the source that restore alike and verify; only new points move; --points latest; a damaged point and its descendants named and left out; a killed sync redone; a held lock named",
            .timeLimit(.minutes(5)))
        func folderToFolder() async throws {
            try await LibvirtGuest.run { fx, guest in
                // A full point with 24 MiB of data in vda, long enough to copy for the test to stop a sync in it.
                try await guest.write("vda", "write -P 0x11 1M 24M")
                try await guest.write("vdb", "write -P 0x22 0 1M")
                let (full, _) = try await BackupTests.backup(guest)
                try await guest.write("vda", "write -P 0x33 4M 64k")
                let (inc1, _) = try await BackupTests.backup(guest)
                try await guest.write("vdb", "write -P 0x34 8M 64k")
                let (inc2, _) = try await BackupTests.backup(guest)
                let chain = [full.point, inc1.point, inc2.point]

                try await Self.refusesBadInput(guest)

                // Three points into a new repository: each the source's files byte for byte, restoring alike.
                let mirror = fx.path("mirror")
                let first = try await Self.sync(guest, to: mirror, ["--init"])
                try requireSuccess(first)
                let copied = try Self.domain(first)
                #expect(copied.copied == chain && copied.present == 0, "\(first)")
                #expect(copied.failed.isEmpty && copied.skipped.isEmpty, "\(first)")
                #expect(copied.bytes == (try Self.sourceBytes(guest, chain)), "\(first)")
                #expect(try FileFacts.listing("\(mirror)/\(guest.name)") == [".lock"] + chain)
                for id in chain { try await Self.expectSameFiles(guest, id, in: mirror) }
                try await Self.expectRestoresAlike(guest, chain, from: mirror)
                try await Self.expectVerifies(guest, mirror)

                // Again: nothing to copy. Then a new incremental moves alone.
                let again = try Self.domain(try await Self.sync(guest, to: mirror))
                #expect(again.copied.isEmpty && again.bytes == 0 && again.present == 3, "\(again)")
                try await guest.write("vda", "write -P 0x35 12M 64k")
                let (inc3, _) = try await BackupTests.backup(guest)
                let next = try await Self.sync(guest, to: mirror)
                try requireSuccess(next)
                let nextReport = try Self.domain(next)
                #expect(nextReport.copied == [inc3.point] && nextReport.present == 3, "\(next)")
                #expect(nextReport.bytes == (try Self.sourceBytes(guest, [inc3.point])), "\(next)")
                try await Self.expectSameFiles(guest, inc3.point, in: mirror)
                try await Self.expectVerifies(guest, mirror)

                // --points latest into an empty repository: the newest point and its chain, not the older chain.
                let (full2, _) = try await BackupTests.backup(guest, ["--level", "full"])
                try await guest.write("vdb", "write -P 0x36 2M 64k")
                let (inc4, _) = try await BackupTests.backup(guest)
                let latest = fx.path("latest")
                let latestRun = try await Self.sync(guest, to: latest, ["--init", "--points", "latest"])
                try requireSuccess(latestRun)
                #expect(try Self.domain(latestRun).copied == [full2.point, inc4.point], "\(latestRun)")
                #expect(try FileFacts.listing("\(latest)/\(guest.name)") == [".lock", full2.point, inc4.point])
                try await Self.expectVerifies(guest, latest)

                // The target's inc4 with another manifest: a conflict, named and left as it is.
                let edited = "\(Self.folder(guest, inc4.point, in: latest))/manifest.json"
                var manifest =
                    try JSONSerialization.jsonObject(with: FileFacts.contents(edited)) as? [String: Any] ?? [:]
                manifest["checkpoint"] = "another-checkpoint"
                try JSONSerialization.data(withJSONObject: manifest).write(to: URL(fileURLWithPath: edited))
                let editedBytes = try FileFacts.contents(edited)
                let conflict = try await Self.sync(guest, to: latest, ["--points", "latest"])
                #expect(conflict.exitCode == 1 && conflict.stderrLines.count == 1, "\(conflict)")
                #expect(conflict.stderr.contains("\(inc4.point) has another manifest"), "\(conflict)")
                let conflictReport = try Self.domain(conflict)
                #expect(conflictReport.copied.isEmpty && conflictReport.present == 0, "\(conflict)")
                #expect(conflictReport.failed.map(\.reason) == ["conflict"], "\(conflict)")
                #expect(try FileFacts.contents(edited) == editedBytes, "a conflicting point was overwritten")

                let all = chain + [inc3.point, full2.point, inc4.point]
                try await Self.damagedSource(guest, all: all)
                try await Self.killedAndLocked(guest, all: all)
            }
        }

        /// `--to` not a repository, `--from` not one, both the same: one line each, nothing made.
        static func refusesBadInput(_ guest: LibvirtGuest) async throws {
            let fx = guest.fx
            let absent = fx.path("absent")
            let noTarget = try await guest.pullback(["sync", "--from", guest.repo, "--to", absent])
            expectCleanFailure(noTarget, mentioning: ["not a Pullback repository", absent, "--init"])
            let noSource = try await guest.pullback(["sync", "--from", fx.path("nothing"), "--to", absent, "--init"])
            expectCleanFailure(noSource, mentioning: ["not a Pullback repository", fx.path("nothing")])
            #expect(!FileFacts.exists(absent), "a refused sync made its target")
            let same = try await guest.pullback(["sync", "--from", guest.repo, "--to", guest.repo + "/."])
            expectCleanFailure(same, mentioning: ["same repository"])
            let unknown = try await guest.pullback(["sync", "--from", guest.repo, "--to", absent, "--init", "other"])
            expectCleanFailure(unknown, mentioning: ["no backup of other"])
        }

        /// A flipped byte in an incremental point's image: that point is named with the image, its descendants are
        /// left out, the other chain is copied, the exit status is 1 and the target verifies.
        static func damagedSource(_ guest: LibvirtGuest, all: [String]) async throws {
            let (full, inc1, inc2, inc3) = (all[0], all[1], all[2], all[3])
            let image = "\(folder(guest, inc1, in: guest.repo))/vda.qcow2"
            let restoreByte = try flipByte(image)
            let partial = guest.fx.path("partial")
            let result = try await sync(guest, to: partial, ["--init"])
            #expect(result.exitCode == 1 && result.signal == nil, "\(result)")
            #expect(result.stderrLines.count == 1, "\(result)")
            for word in ["3 points not copied", inc1, image, "damaged", inc2, inc3] {
                #expect(result.stderr.contains(word), "stderr should name \(word): \(result)")
            }
            let report = try domain(result)
            #expect(report.copied == [full, all[4], all[5]], "\(result)")
            #expect(
                report.failed
                    == [Report.NotCopied(point: inc1, reason: "damaged", object: "vda.qcow2", basedOn: nil)],
                "\(result)")
            #expect(
                report.skipped == [
                    Report.NotCopied(point: inc2, reason: "dependent", object: nil, basedOn: inc1),
                    Report.NotCopied(point: inc3, reason: "dependent", object: nil, basedOn: inc2),
                ], "\(result)")
            #expect(try FileFacts.listing("\(partial)/\(guest.name)") == [".lock", full, all[4], all[5]])
            try await expectVerifies(guest, partial)

            // Repaired, the next run copies what was left out.
            try restoreByte()
            let repaired = try domain(try await sync(guest, to: partial))
            #expect(repaired.copied == [inc1, inc2, inc3] && repaired.present == 3, "\(repaired)")
            try await expectVerifies(guest, partial)
        }

        /// A sync stopped (SIGSTOP) while it copies the big full point holds the target's lock: a second sync is
        /// one line naming its process. Killed (SIGKILL) there, it leaves nothing listed, and the next run copies
        /// every point, identical to the source's.
        static func killedAndLocked(_ guest: LibvirtGuest, all: [String]) async throws {
            let fx = guest.fx
            let killed = fx.path("killed")
            try await guest.makeRepository(killed)
            let child = try fx.spawn(
                [try Pullback.binaryPath(), "sync", "--from", guest.repo, "--to", killed], label: "pullback-sync")
            try await BackupFailureTests.waitUntil(child, seconds: 60) {
                stagedBytes(guest, in: killed) > Int64(4 * mib)
            }
            child.suspend()
            try #require(child.isRunning, "the sync ended before the test could stop it: \(child.result())")
            // Stopped in a point's copy: the first full's, unless that was committed between the look and the stop.
            let stopped = try FileFacts.listing("\(killed)/\(guest.name)")
            #expect(stopped.filter { $0.hasSuffix(".partial") }.count == 1, "not stopped mid-copy: \(stopped)")

            let locked = try await guest.pullback(["sync", "--from", guest.repo, "--to", killed])
            expectCleanFailure(locked, mentioning: ["locked by process \(child.pid)", "\(killed)/\(guest.name)"])

            child.kill()
            let ended = try await child.waitForExit(timeout: .seconds(30))
            #expect(ended.signal == SIGKILL, "\(ended)")
            let listed = try await guest.list(repo: killed).map(\.id)
            #expect(all.starts(with: listed) && listed.count < 2, "a killed sync listed another point: \(listed)")

            // What a store that writes groups in place (a bucket) leaves of a killed copy: objects under the point's
            // own name, without a manifest. Not a point; the next run replaces it.
            let inPlace = folder(guest, all[1], in: killed)
            try FileManager.default.createDirectory(atPath: inPlace, withIntermediateDirectories: false)
            try FileFacts.create("\(inPlace)/vda.qcow2", with: Data("half an image".utf8))

            let rerun = try await sync(guest, to: killed)
            try requireSuccess(rerun)
            #expect(try domain(rerun).copied == Array(all.dropFirst(listed.count)), "\(rerun)")
            #expect(try FileFacts.listing("\(killed)/\(guest.name)") == [".lock"] + all, "a staging folder was left")
            for id in all { try await expectSameFiles(guest, id, in: killed) }
            try await expectVerifies(guest, killed)
        }
    }
}
