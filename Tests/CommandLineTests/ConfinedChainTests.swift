import Foundation
import Testing

extension CopyIntegration {
    /// A repository edited by hand cannot make `restore`, `verify` or `image-info` read a file outside it, nor hang
    /// them on a FIFO: each edit of a real two-point repository (headers rebased, manifests rewritten, images swapped
    /// for links and FIFOs) is refused in one line, promptly, and the outside file's content appears nowhere.
    @Suite("Repository chains stay inside the repository", .serialized)
    struct ConfinedChainTests {
        /// What the outside file holds, over and over.
        static let marker = "HOST-SECRET-c0ffee-"
        /// Any command here ends at once; a hang (a FIFO opened for reading) fails the test instead.
        static let prompt: Duration = .seconds(30)

        /// A copy of the pristine repository at `<fixture>/<name>`, to edit.
        static func copy(_ guest: LibvirtGuest, as name: String) async throws -> String {
            let repo = guest.fx.path(name)
            try await guest.fx.runChecked(["cp", "-a", guest.repo, repo])
            return repo
        }

        /// `restore --format raw` and `verify` of the latest point of `repo` both fail in one line mentioning
        /// `mentioning`, within `prompt`; nothing printed or restored holds `marker` (or `/etc/passwd`'s first
        /// line).
        static func expectRefused(
            _ guest: LibvirtGuest, repo: String, label: String, mentioning: [String] = [], verify: Bool = true,
            sourceLocation: SourceLocation = #_sourceLocation
        ) async throws {
            let out = guest.fx.path("out-\(label)")
            let restore = try await guest.pullback(
                ["restore", "--repo", repo, guest.name, "--to", out, "--format", "raw"], timeout: prompt)
            expectCleanFailure(restore, mentioning: mentioning, sourceLocation: sourceLocation)
            var results = [restore]
            if verify {
                let verified = try await guest.pullback(["verify", "--repo", repo, guest.name], timeout: prompt)
                expectCleanFailure(verified, sourceLocation: sourceLocation)
                results.append(verified)
            }
            for result in results {
                let printed = result.stdout + result.stderr
                #expect(
                    !printed.contains(marker) && !printed.contains("root:x:0:0"), "\(label): \(result)",
                    sourceLocation: sourceLocation)
            }
            for secret in [marker, "root:x:0:0"] {
                let leaked = try ChainEdits.files(under: out, containing: secret)
                #expect(leaked.isEmpty, "\(label): \(leaked) hold outside content", sourceLocation: sourceLocation)
            }
        }

        @Test(
            "restore and verify read only the chain the manifests describe: no outside backing file, link or FIFO",
            .timeLimit(.minutes(5)))
        func restoreAndVerify() async throws {
            try await LibvirtGuest.run(disks: [("vda", 16 * mib)]) { fx, guest in
                try await guest.write("vda", "write -P 0x5a 1M 128k")
                let (full, _) = try await BackupTests.backup(guest)
                try await guest.write("vda", "write -P 0x6b 4M 64k")
                let (inc, _) = try await BackupTests.backup(guest)
                let snapshot = try await guest.snapshot("inc")
                let folder = { (repo: String, point: String) in "\(repo)/\(guest.name)/\(point)" }

                let secret = fx.path("secret.raw")
                try ChainEdits.makeSecret(secret, marker: Self.marker, size: 16 * mib)
                let outside = fx.path("outside.qcow2")
                try await fx.runChecked(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", secret, outside])
                let fifo = fx.path("fifo")
                try ChainEdits.makeFIFO(fifo)

                // The genuine chain restores byte for byte, into a new 0700 folder, and verifies.
                try await BackupTests.expectRestores(guest, at: inc.point, matching: snapshot, label: "genuine")
                #expect(FileFacts.mode(fx.target("genuine-raw")) == 0o700)
                try requireSuccess(try await guest.pullback(["verify", "--repo", guest.repo, guest.name]))

                // A raw backing file outside, by absolute name; the manifest's digest updated to match, so that only
                // the header's backing name gives it away.
                let absolute = try await Self.copy(guest, as: "absolute")
                let absoluteImage = folder(absolute, inc.point) + "/vda.qcow2"
                try await fx.runChecked(["qemu-img", "rebase", "-u", "-b", secret, "-F", "raw", absoluteImage])
                // Restore checks digests first: each edited image's digest is made to match, so that the header is
                // what restore and verify must refuse.
                func recordDigest(of repo: String) async throws {
                    let image = folder(repo, inc.point) + "/vda.qcow2"
                    let sum = try await fx.runChecked(["sha256sum", image])
                    let hex = sum.stdout.split(separator: " ").first.map(String.init) ?? ""
                    try ChainEdits.editManifest(
                        folder(repo, inc.point), disk: "vda", "imageDigest", to: "sha256:" + hex)
                }
                try await recordDigest(of: absolute)
                try await Self.expectRefused(
                    guest, repo: absolute, label: "absolute", mentioning: [absoluteImage, "../\(full.point)/vda.qcow2"])

                // The host's /etc/passwd as a raw backing file.
                let passwd = try await Self.copy(guest, as: "passwd")
                try await fx.runChecked([
                    "qemu-img", "rebase", "-u", "-b", "/etc/passwd", "-F", "raw",
                    folder(passwd, inc.point) + "/vda.qcow2",
                ])
                try await recordDigest(of: passwd)
                try await Self.expectRefused(guest, repo: passwd, label: "passwd", mentioning: ["/etc/passwd"])

                // A name climbing out of the repository, with no backing format: the format would be guessed.
                let relative = try await Self.copy(guest, as: "relative")
                let relativeImage = folder(relative, inc.point) + "/vda.qcow2"
                try await fx.runChecked([
                    "qemu-img", "rebase", "-u", "-b", "../../../secret.raw", "-F", "raw", relativeImage,
                ])
                try ChainEdits.dropBackingFormat(relativeImage)
                try await recordDigest(of: relative)
                try await Self.expectRefused(
                    guest, repo: relative, label: "relative", mentioning: ["../../../secret.raw"])

                // The right name, but raw, or with no format at all (guessed): a repository image's backing file is
                // qcow2, said so.
                for (label, format) in [("raw-format", "raw"), ("no-format", "qcow2")] {
                    let repo = try await Self.copy(guest, as: label)
                    let image = folder(repo, inc.point) + "/vda.qcow2"
                    try await fx.runChecked([
                        "qemu-img", "rebase", "-u", "-b", "../\(full.point)/vda.qcow2", "-F", format, image,
                    ])
                    if label == "no-format" { try ChainEdits.dropBackingFormat(image) }
                    try await recordDigest(of: repo)
                    let restore = try await guest.pullback(
                        ["restore", "--repo", repo, guest.name, "--to", fx.path("out-\(label)"), "--format", "raw"],
                        timeout: Self.prompt)
                    expectCleanFailure(restore, mentioning: [image, "qcow2"])
                }

                // The header and the manifest agree on an outside qcow2 backing file.
                let agreed = try await Self.copy(guest, as: "agreed")
                try await fx.runChecked([
                    "qemu-img", "rebase", "-u", "-b", "../../../outside.qcow2", "-F", "qcow2",
                    folder(agreed, inc.point) + "/vda.qcow2",
                ])
                try ChainEdits.editManifest(
                    folder(agreed, inc.point), disk: "vda", "backingImage", to: "../../../outside.qcow2")
                try await Self.expectRefused(
                    guest, repo: agreed, label: "agreed", mentioning: ["../../../outside.qcow2"])

                // The manifest's image name climbs out.
                let climbing = try await Self.copy(guest, as: "climbing")
                try ChainEdits.editManifest(
                    folder(climbing, inc.point), disk: "vda", "image", to: "../../../outside.qcow2")
                try ChainEdits.editManifest(folder(climbing, inc.point), disk: "vda", "backingImage", to: nil)
                try await Self.expectRefused(guest, repo: climbing, label: "climbing", mentioning: ["outside.qcow2"])

                // A disk target that climbs out of --to: refused, and nothing is written beside the folder.
                let escaping = try await Self.copy(guest, as: "escaping")
                try ChainEdits.editManifest(folder(escaping, inc.point), disk: "vda", "target", to: "../escaped")
                let escapingOut = fx.path("escaping/out")
                let escaped = try await guest.pullback(
                    ["restore", "--repo", escaping, guest.name, "--to", escapingOut, "--format", "raw"],
                    timeout: Self.prompt)
                expectCleanFailure(escaped, mentioning: ["../escaped"])
                #expect(!FileFacts.exists(fx.path("escaping/escaped.raw")), "restore wrote outside --to")

                // The point's image, then its parent's, is a symbolic link to an image outside.
                for (label, point) in [("linked-top", inc.point), ("linked-base", full.point)] {
                    let linked = try await Self.copy(guest, as: label)
                    let image = folder(linked, point) + "/vda.qcow2"
                    try FileManager.default.removeItem(atPath: image)
                    try FileManager.default.createSymbolicLink(atPath: image, withDestinationPath: outside)
                    try await Self.expectRefused(
                        guest, repo: linked, label: label, mentioning: [image, "symbolic link"])
                }

                // A point folder that is a link to a copy elsewhere.
                let linkedPoint = try await Self.copy(guest, as: "linked-point")
                let elsewhere = fx.path("elsewhere")
                try FileManager.default.moveItem(atPath: folder(linkedPoint, full.point), toPath: elsewhere)
                try await fx.runChecked([
                    "qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", secret, elsewhere + "/vda.qcow2",
                ])
                try FileManager.default.createSymbolicLink(
                    atPath: folder(linkedPoint, full.point), withDestinationPath: elsewhere)
                try await Self.expectRefused(
                    guest, repo: linkedPoint, label: "linked-point", mentioning: [folder(linkedPoint, full.point)])

                // A FIFO as the backing file, then as the image itself: refused at once, never opened for reading.
                let fifoBacking = try await Self.copy(guest, as: "fifo-backing")
                try await fx.runChecked([
                    "qemu-img", "rebase", "-u", "-b", fifo, "-F", "raw", folder(fifoBacking, inc.point) + "/vda.qcow2",
                ])
                try await Self.expectRefused(guest, repo: fifoBacking, label: "fifo-backing", mentioning: [fifo])
                let fifoImage = try await Self.copy(guest, as: "fifo-image")
                let replaced = folder(fifoImage, inc.point) + "/vda.qcow2"
                try FileManager.default.removeItem(atPath: replaced)
                try ChainEdits.makeFIFO(replaced)
                try await Self.expectRefused(
                    guest, repo: fifoImage, label: "fifo-image", mentioning: [replaced, "FIFO"])

                // The pristine repository still restores and verifies after all this.
                try await BackupTests.expectRestores(guest, at: "latest", matching: snapshot, label: "after")
            }
        }

        @Test("image-info refuses a FIFO, as the image or as a backing file, and a device", .timeLimit(.minutes(2)))
        func imageInfo() async throws {
            try await Fixture.run { fx in
                let binary = try Pullback.binaryPath()
                let fifo = fx.path("fifo")
                try ChainEdits.makeFIFO(fifo)
                let onFIFO = try await fx.run([binary, "image-info", fifo], timeout: Self.prompt)
                expectCleanFailure(onFIFO, mentioning: [fifo, "FIFO"])

                let overlay = fx.path("overlay.qcow2")
                try await fx.runChecked(["qemu-img", "create", "-q", "-f", "qcow2", overlay, "1M"])
                try await fx.runChecked(["qemu-img", "rebase", "-u", "-b", fifo, "-F", "raw", overlay])
                let backedByFIFO = try await fx.run([binary, "image-info", overlay], timeout: Self.prompt)
                expectCleanFailure(backedByFIFO, mentioning: [fifo, "FIFO"])

                let onDevice = try await fx.run([binary, "image-info", "/dev/zero"], timeout: Self.prompt)
                expectCleanFailure(onDevice, mentioning: ["/dev/zero", "device"])

                // A device as a backing file: refused unless asked for, then read as qemu would.
                let onZero = fx.path("on-zero.qcow2")
                try await fx.runChecked(["qemu-img", "create", "-q", "-f", "qcow2", onZero, "1M"])
                try await fx.runChecked(["qemu-img", "rebase", "-u", "-b", "/dev/zero", "-F", "raw", onZero])
                let backedByDevice = try await fx.run([binary, "image-info", onZero], timeout: Self.prompt)
                expectCleanFailure(backedByDevice, mentioning: ["/dev/zero", "device"])
                let allowed = try await fx.run(
                    [binary, "image-info", "--allow-devices", onZero], timeout: Self.prompt)
                try requireSuccess(allowed)
                #expect(allowed.stdout.contains("1: /dev/zero (raw"), "\(allowed.stdout)")

                // A genuine chain still opens, by qemu's rules.
                let base = fx.path("base.qcow2")
                let top = fx.path("top.qcow2")
                try await fx.runChecked(["qemu-img", "create", "-q", "-f", "qcow2", base, "1M"])
                try await fx.runChecked([
                    "qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top, "1M",
                ])
                try requireSuccess(try await fx.run([binary, "image-info", top], timeout: Self.prompt))
            }
        }
    }
}
