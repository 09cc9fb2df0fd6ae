import Foundation
import Testing

extension CopyIntegration {
    /// A repository is untrusted input: names in it that carry terminal controls are printed escaped by `list`,
    /// `restore` and `verify` (or refused in one escaped error line), and numbers in a manifest never crash `list`.
    @Suite("Repository strings and numbers in output (embedded libvirt)", .serialized)
    struct RepositoryStringsTests {
        /// C0 controls other than the newline and tab, DEL, and C1 controls: what must never reach a terminal raw.
        static func rawControls(_ text: String) -> [String] {
            text.unicodeScalars.filter {
                ($0.value < 0x20 && $0 != "\n" && $0 != "\t") || (0x7F...0x9F).contains($0.value)
            }.map { String(format: "U+%04X", $0.value) }
        }

        /// No signal, exit 0 or a one-line failure, and no raw control character in anything printed.
        static func expectEscaped(_ result: CommandResult, sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(result.signal == nil, "killed by a signal: \(result)", sourceLocation: sourceLocation)
            if !result.succeeded { expectCleanFailure(result, sourceLocation: sourceLocation) }
            let raw = rawControls(result.stdout + result.stderr)
            #expect(raw.isEmpty, "raw control characters \(raw) printed: \(result)", sourceLocation: sourceLocation)
        }

        /// Rewrites the point's manifest.json: `edit` changes its object, then each placeholder number in the text
        /// is replaced (JSONSerialization cannot write a UInt64 above Int64.max).
        static func editManifest(
            _ path: String, numbers: [String: String] = [:], _ edit: (inout [String: Any]) -> Void
        ) throws {
            var object = try #require(
                try JSONSerialization.jsonObject(with: try FileFacts.contents(path)) as? [String: Any])
            edit(&object)
            var text = String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
            for (placeholder, value) in numbers { text = text.replacingOccurrences(of: placeholder, with: value) }
            try FileManager.default.removeItem(atPath: path)
            try FileFacts.create(path, with: Data(text.utf8))
        }

        @Test(
            "Escape sequences in disk targets and the domain folder are printed escaped; 2^64-1 + 1 bytes copied lists",
            .timeLimit(.minutes(3)))
        func escapedAndSaturated() async throws {
            try await LibvirtGuest.run(disks: [("vda", 16 * mib)]) { fx, guest in
                try await guest.write("vda", "write -P 0x5c 0 1M")
                let (full, _) = try await BackupTests.backup(guest)
                let manifest = "\(guest.repo)/\(guest.name)/\(full.point)/manifest.json"
                let title = "vda\u{1B}]0;owned\u{07}"
                try Self.editManifest(manifest, numbers: ["111111111": "18446744073709551615", "222222222": "1"]) {
                    var disks = $0["disks"] as? [[String: Any]] ?? []
                    var second = disks.first ?? [:]
                    disks[0]["target"] = title
                    disks[0]["bytesCopied"] = 111_111_111
                    second["target"] = "vdb\u{9B}2J\u{7F}"
                    second["bytesCopied"] = 222_222_222
                    $0["disks"] = disks + [second]
                }

                let list = try await guest.pullback(["list", "--repo", guest.repo])
                Self.expectEscaped(list)
                if list.succeeded {
                    #expect(list.stdout.contains("vda\\x1b]0;owned\\x07"), "\(list)")
                    #expect(list.stdout.contains("vdb\\x9b2J\\x7f"), "\(list)")
                    #expect(list.stdout.contains("16384.0 PiB"), "the sum saturates at 2^64-1: \(list)")
                }
                let json = try await guest.pullback(["list", "--repo", guest.repo, "--json"])
                Self.expectEscaped(json)
                if json.succeeded {
                    #expect(json.stdout.contains("18446744073709551615"), "\(json)")
                }
                let verify = try await guest.pullback(["verify", "--repo", guest.repo, guest.name])
                Self.expectEscaped(verify)
                if verify.succeeded { #expect(verify.stdout.contains("vda\\x1b]0;owned\\x07  ok"), "\(verify)") }
                Self.expectEscaped(try await guest.pullback(["verify", "--repo", guest.repo, guest.name, "--json"]))
                let restore = try await guest.pullback([
                    "restore", "--repo", guest.repo, guest.name, "--to", fx.target("restored"),
                ])
                Self.expectEscaped(restore)

                // The domain's folder itself, as `list` finds it.
                let renamed = fx.path("renamed")
                try await fx.runChecked(["cp", "-a", guest.repo, renamed])
                try await fx.runChecked(["mv", "\(renamed)/\(guest.name)", "\(renamed)/pb\u{1B}[2Jg"])
                let folder = try await guest.pullback(["list", "--repo", renamed])
                Self.expectEscaped(folder)
                // Listed escaped, or (where names are validated) refused or passed over: never printed raw.
                if folder.succeeded && !folder.stdout.isEmpty {
                    #expect(folder.stdout.contains("pb\\x1b[2Jg"), "\(folder)")
                }
            }
        }
    }
}
