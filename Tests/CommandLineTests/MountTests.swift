import Foundation
import Testing

extension BackupIntegration {
    /// `pullback mount`: each disk of a point as a read-only file, equal to a plain restore, until `pullback
    /// unmount` or Ctrl-C; then nothing mounted, no nbdfuse left and the mountpoint empty again.
    @Suite("pullback mount and unmount (embedded libvirt)", .serialized)
    struct MountTests {
        /// The mounts under `folder` in /proc/mounts.
        static func mounts(under folder: String) throws -> [String] {
            let table = try String(contentsOfFile: "/proc/mounts", encoding: .utf8)
            return table.split(separator: "\n").map { String($0.split(separator: " ")[1]) }.filter {
                $0.hasPrefix(folder + "/")
            }
        }

        static func waitForFiles(_ mount: ChildProcess, count: Int) async throws -> [String] {
            for _ in 0..<300 {
                let files = mount.stdoutSoFar().split(separator: "\n").map(String.init)
                if files.count == count { return files }
                if !mount.isRunning { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            throw HarnessError("mount did not show its files: \(mount.stdoutSoFar()) \(mount.stderrSoFar())")
        }

        @Test(
            "each disk of a point reads as the restored raw image; unmount ends the command and leaves nothing; Ctrl-C too",
            .timeLimit(.minutes(3)))
        func mountsComparesAndUnmounts() async throws {
            try await LibvirtGuest.run { fx, guest in
                try await guest.write("vda", "write -P 0x5a 0 2M", "write -P 0x17 20M 1M")
                try await guest.write("vdb", "write -P 0x6b 1M 1M")
                try requireSuccess(try await guest.backup())
                try await guest.write("vda", "write -P 0x33 1M 1M")
                try requireSuccess(try await guest.backup())
                let plain = fx.path("plain")
                try requireSuccess(
                    try await guest.pullback([
                        "restore", "--repo", guest.repo, guest.name, "--to", plain, "--format", "raw",
                    ]))

                let mountpoint = try fx.makeDirectory("mnt")
                let binary = try Pullback.binaryPath()
                let mount = try fx.spawn(
                    [binary, "mount", "--repo", guest.repo, guest.name, mountpoint], label: "pullback-mount")
                let files = try await Self.waitForFiles(mount, count: guest.disks.count)
                #expect(files == guest.disks.map { "\(mountpoint)/\($0.target)" }, "\(files)")
                for disk in guest.disks {
                    try await fx.runChecked(["cmp", "\(mountpoint)/\(disk.target)", "\(plain)/\(disk.target).raw"])
                }
                let write = try await fx.run([
                    "dd", "if=/dev/zero", "of=\(mountpoint)/vda", "bs=512", "count=1", "conv=notrunc",
                ])
                #expect(!write.succeeded, "a mounted disk took a write: \(write)")

                try requireSuccess(try await guest.pullback(["unmount", mountpoint]))
                try requireSuccess(try await mount.waitForExit(timeout: .seconds(30)))
                #expect(try Self.mounts(under: mountpoint).isEmpty)
                #expect(try FileManager.default.contentsOfDirectory(atPath: mountpoint).isEmpty)
                #expect(try await fx.run(["pgrep", "-f", "nbdfuse -r \(mountpoint)"]).stdout.isEmpty)

                // Ctrl-C: the same end.
                let again = try fx.spawn(
                    [binary, "mount", "--repo", guest.repo, guest.name, "--at", "latest", mountpoint],
                    label: "pullback-mount-again")
                _ = try await Self.waitForFiles(again, count: guest.disks.count)
                again.interrupt()
                _ = try await again.waitForExit(timeout: .seconds(30))
                #expect(try Self.mounts(under: mountpoint).isEmpty)
                #expect(try FileManager.default.contentsOfDirectory(atPath: mountpoint).isEmpty)

                // Refusals: a folder with files, nothing to unmount.
                try Data("x".utf8).write(to: URL(fileURLWithPath: mountpoint + "/keep"))
                let busy = try await guest.pullback(["mount", "--repo", guest.repo, guest.name, mountpoint])
                expectCleanFailure(busy, mentioning: ["not an empty folder"])
                let nothing = try await guest.pullback(["unmount", mountpoint])
                expectCleanFailure(nothing, mentioning: ["nothing pullback mounted"])
            }
        }
    }
}
