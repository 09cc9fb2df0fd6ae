import Foundation
import Testing

extension CopyIntegration {
    /// The bash completion script pullback generates, driven as bash drives it on TAB: paths, libvirt's domains and
    /// a repository's points complete, and completing prints nothing else.
    @Suite("Shell completion (bash)", .serialized)
    struct CompletionTests {
        /// What bash offers for the command line `words`, the last of which is being typed: the script is generated,
        /// sourced, and its function called with COMP_WORDS, COMP_CWORD, COMP_LINE and COMP_POINT set as bash sets
        /// them. Returns the candidates, one a line, and what the completion wrote on stderr.
        static func complete(_ fx: Fixture, _ words: [String]) async throws -> (candidates: [String], stderr: String) {
            let binary = try Pullback.binaryPath()
            let scriptPath = fx.path("pullback-completion.bash")
            if !FileManager.default.fileExists(atPath: scriptPath) {
                let generated = try await fx.run([binary, "--generate-completion-script", "bash"])
                try requireSuccess(generated)
                try generated.stdout.write(toFile: scriptPath, atomically: true, encoding: .utf8)
            }
            let quoted = ([binary] + words).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
            let driver = """
                source '\(scriptPath)'
                COMP_WORDS=(\(quoted.joined(separator: " ")))
                COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
                COMP_LINE="${COMP_WORDS[*]}"
                COMP_POINT=${#COMP_LINE}
                COMPREPLY=()
                _pullback "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
                for candidate in "${COMPREPLY[@]}"; do printf '%s\\n' "$candidate"; done
                """
            let result = try await fx.run(["bash", "-c", driver])
            try requireSuccess(result)
            return (result.stdout.split(separator: "\n").map(String.init), result.stderr)
        }

        @Test("paths: folders for restore --to and --repo, files for image-info and serve --image")
        func paths() async throws {
            try await Fixture.run { fx in
                let folder = try fx.makeDirectory("completion-folder")
                try FileFacts.create(folder + "/disk-image.qcow2", with: Data())
                _ = try fx.makeDirectory("completion-folder/restore-here")

                let to = try await Self.complete(fx, ["restore", "--repo", folder, "pbg", "--to", folder + "/rest"])
                #expect(to.candidates == [folder + "/restore-here"], "restore --to: \(to)")
                let repo = try await Self.complete(fx, ["list", "--repo", folder + "/re"])
                #expect(repo.candidates == [folder + "/restore-here"], "list --repo: \(repo)")
                let image = try await Self.complete(fx, ["image-info", folder + "/disk"])
                #expect(image.candidates == [folder + "/disk-image.qcow2"], "image-info IMAGE: \(image)")
                let served = try await Self.complete(fx, ["serve", "--image", folder + "/disk"])
                #expect(served.candidates == [folder + "/disk-image.qcow2"], "serve --image: \(served)")
                #expect((to.stderr + repo.stderr + image.stderr + served.stderr).isEmpty)
            }
        }

        @Test(
            "backup DOMAIN from libvirt through --connect; --at from the --repo's points; silent on errors",
            .timeLimit(.minutes(3)))
        func names() async throws {
            try await LibvirtGuest.run(name: "pbg-completion") { fx, guest in
                let domains = try await Self.complete(
                    fx, ["backup", "--connect", guest.uri, "--repo", guest.repo, "pbg-c"])
                #expect(domains.candidates == ["pbg-completion"], "backup DOMAIN: \(domains)")
                #expect(domains.stderr.isEmpty, "completion wrote on stderr: \(domains.stderr)")

                try await guest.write("vda", "write -P 0x21 0 64k")
                let first = try BackupSummary.decode(try await guest.backup())
                let second = try BackupSummary.decode(try await guest.backup())
                let restore = try await Self.complete(fx, ["restore", "--repo", guest.repo, guest.name, "--at", ""])
                #expect(restore.candidates == ["latest", first.point, second.point], "restore --at: \(restore)")
                let serve = try await Self.complete(fx, ["serve", "--repo", guest.repo, guest.name, "--at", ""])
                #expect(serve.candidates == ["latest", first.point, second.point], "serve --at: \(serve)")
                let verify = try await Self.complete(fx, ["verify", "--repo", guest.repo, "--at", "a"])
                #expect(verify.candidates == ["all"], "verify --at: \(verify)")
                let repositoryDomain = try await Self.complete(fx, ["list", "--repo", guest.repo, ""])
                #expect(repositoryDomain.candidates == [guest.name], "list DOMAIN: \(repositoryDomain)")

                // No repository there, no libvirt at that URI: nothing offered, nothing said.
                let noRepository = try await Self.complete(
                    fx, ["restore", "--repo", fx.path("nowhere"), "x", "--at", ""])
                #expect(noRepository.candidates == ["latest"], "\(noRepository)")
                let noLibvirt = try await Self.complete(
                    fx, ["backup", "--connect", "qemu+unix:///system?socket=" + fx.path("no.sock"), ""])
                #expect(noLibvirt.candidates.isEmpty, "\(noLibvirt)")
                #expect((noRepository.stderr + noLibvirt.stderr).isEmpty, "\(noRepository) \(noLibvirt)")
            }
        }
    }
}
