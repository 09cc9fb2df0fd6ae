import Foundation
import Testing

extension CopyIntegration {
    /// The bash completion script pullback generates, driven as bash drives it on TAB: paths, libvirt's domains and
    /// a repository's points complete, and completing prints nothing else.
    @Suite("Shell completion (bash)", .serialized)
    struct CompletionTests {
        /// What bash offers for the command line `words`, the last of which is being typed: the script is generated,
        /// sourced, and its function called with COMP_WORDS, COMP_CWORD, COMP_LINE and COMP_POINT set as bash sets
        /// them, in the fixture's folder (so whatever a completion runs lands there). Returns the candidates, one a
        /// line, and what the completion wrote on stderr; throws when it has not ended within `timeout`.
        static func complete(
            _ fx: Fixture, _ words: [String], timeout: Duration = .seconds(120)
        ) async throws -> (candidates: [String], stderr: String) {
            let binary = try Pullback.binaryPath()
            let scriptPath = fx.path("pullback-completion.bash")
            if !FileManager.default.fileExists(atPath: scriptPath) {
                let generated = try await fx.run([binary, "--generate-completion-script", "bash"])
                try requireSuccess(generated)
                try generated.stdout.write(toFile: scriptPath, atomically: true, encoding: .utf8)
            }
            let quoted = ([binary] + words).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
            let driver = """
                cd '\(fx.root)'
                source '\(scriptPath)'
                COMP_WORDS=(\(quoted.joined(separator: " ")))
                COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
                COMP_LINE="${COMP_WORDS[*]}"
                COMP_POINT=${#COMP_LINE}
                COMPREPLY=()
                _pullback "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
                for candidate in "${COMPREPLY[@]}"; do printf '%s\\n' "$candidate"; done
                """
            let result = try await fx.run(["bash", "-c", driver], timeout: timeout)
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

        @Test(
            "a libvirt domain whose name a shell would expand is not offered, and the TAB runs nothing of it",
            .timeLimit(.minutes(3)))
        func expandableDomainNames() async throws {
            try await LibvirtGuest.run(name: "pbg-completion", disks: [("vda", 1 * mib)], running: false) { fx, guest in
                // libvirt accepts these names; bash's `compgen -W` would run the command in each.
                let names = ["evil$(touch PWNED)", "evil`touch PWNED-TICK`", "evil{a,b}$HOME"]
                for (index, name) in names.enumerated() {
                    let xml = """
                        <domain type='qemu'><name>\(name)</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
                        <os><type arch='x86_64' machine='pc'>hvm</type></os>\
                        <devices><emulator>/usr/bin/qemu-system-x86_64</emulator></devices></domain>
                        """
                    let xmlPath = fx.path("evil-\(index).xml")
                    try FileFacts.create(xmlPath, with: Data(xml.utf8))
                    try await guest.virshChecked(["define", xmlPath])
                }
                let defined = try await guest.virshChecked(["list", "--all", "--name"])
                #expect(names.allSatisfy(defined.stdout.contains), "defined: \(defined.stdout)")

                let offered = try await Self.complete(fx, ["backup", "--connect", guest.uri, ""])
                #expect(offered.candidates == ["pbg-completion"], "backup DOMAIN: \(offered)")
                #expect(offered.stderr.isEmpty, "completion wrote on stderr: \(offered.stderr)")
                // The README's advice for bash, which cuts an unquoted URI at ':': the quoted word completes alike.
                let quoted = try await Self.complete(fx, ["backup", "--connect", "'" + guest.uri + "'", ""])
                #expect(quoted.candidates == ["pbg-completion"], "backup --connect 'URI' DOMAIN: \(quoted)")
                let ran = try FileFacts.listing(fx.root).filter { $0.hasPrefix("PWNED") }
                #expect(ran.isEmpty, "a TAB ran a domain name's command: \(ran)")
                for name in names { try await guest.virshChecked(["undefine", name]) }
            }
        }

        @Test(
            "no TAB connects through ssh or ext, nor stays on a libvirt that never answers",
            .timeLimit(.minutes(3)))
        func unsafeConnections() async throws {
            try await Fixture.run { fx in
                // Both transports run the URI's `command`: a TAB must not run it, nor prompt for ssh's password.
                let marker = fx.path("transport-ran")
                let command = fx.path("transport-command")
                try FileFacts.create(command, with: Data("#!/bin/sh\ntouch '\(marker)'\n".utf8))
                try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: command)
                for scheme in ["qemu+ext", "qemu+ssh", "qemu+libssh", "qemu+libssh2", "QEMU+SSH"] {
                    let uri = scheme + "://127.0.0.1/system?command=" + command
                    let offered = try await Self.complete(fx, ["backup", "--connect", uri, ""])
                    #expect(offered.candidates.isEmpty && offered.stderr.isEmpty, "\(scheme): \(offered)")
                }
                #expect(!FileFacts.exists(marker), "a TAB ran the command of a qemu+ext or qemu+ssh URI")

                // A server that accepts and never speaks: libvirt would wait for its answer forever.
                let portFile = fx.path("silent-port")
                let server = """
                    import os, socket, sys
                    listener = socket.socket()
                    listener.bind(("127.0.0.1", 0))
                    listener.listen(8)
                    with open(sys.argv[1] + ".tmp", "w") as f:
                        f.write(str(listener.getsockname()[1]))
                    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
                    accepted = []
                    while True:
                        accepted.append(listener.accept())
                    """
                _ = try fx.spawn(["python3", "-c", server, portFile], label: "silent-libvirt")
                #expect(try await waitUntil(timeout: .seconds(30)) { FileFacts.exists(portFile) })
                let port = String(decoding: try FileFacts.contents(portFile), as: UTF8.self)
                let silent = try await Self.complete(
                    fx, ["backup", "--connect", "qemu+tcp://127.0.0.1:\(port)/system", ""], timeout: .seconds(60))
                #expect(silent.candidates.isEmpty && silent.stderr.isEmpty, "silent libvirt: \(silent)")
            }
        }
    }
}
