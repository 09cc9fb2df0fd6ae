import Foundation
import Testing

extension CopyIntegration {
    /// `pullback backup --metrics-file` and the systemd units of `systemd/`. Every metrics file is read with Python's
    /// Prometheus client (Tests/Fixtures/prometheus-text.py), not with Pullback's own reader.
    @Suite("pullback backup --metrics-file, systemd units", .serialized)
    struct MetricsFileTests {
        /// The package's root, found from this file's path (`<root>/Tests/CommandLineTests/MetricsFileTests.swift`).
        static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path

        @Test("The units pass systemd-analyze verify, with ExecStart the pullback under test", .timeLimit(.minutes(1)))
        func unitsVerify() async throws {
            try await Fixture.run { fx in
                let folder = fx.path("units")
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                let installed = "ExecStart=/usr/local/bin/pullback backup "
                for name in ["pullback-backup@.service", "pullback-backup@.timer"] {
                    var text = try String(contentsOfFile: "\(Self.root)/systemd/\(name)", encoding: .utf8)
                    if name.hasSuffix(".service") {
                        #expect(text.contains(installed), "\(name) runs another command")
                        text = text.replacingOccurrences(
                            of: installed, with: "ExecStart=\(try Pullback.binaryPath()) backup ")
                    }
                    try FileFacts.create("\(folder)/\(name)", with: Data(text.utf8))
                }
                let result = try await fx.run([
                    "systemd-analyze", "verify", "\(folder)/pullback-backup@pbg.service",
                    "\(folder)/pullback-backup@pbg.timer",
                ])
                #expect(result.succeeded && result.stdout.isEmpty && result.stderr.isEmpty, "\(result)")
                // The example environment file sets what ExecStart needs and the unit does not set itself.
                let example = try String(contentsOfFile: "\(Self.root)/systemd/pullback.env.example", encoding: .utf8)
                let set = example.split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap {
                    $0.split(separator: "=", maxSplits: 1).first.map(String.init)
                }
                #expect(set == ["PULLBACK_REPO", "PULLBACK_OPTIONS"], "\(set)")
            }
        }

        @Test(
            "A full, a failed and an incremental backup: the file is Prometheus text, bytes and level are those of --json and of the point's files, a failure counts and keeps the last success, another domain's series stay",
            .timeLimit(.minutes(3)))
        func backupsAndFailures() async throws {
            try await LibvirtGuest.run(disks: [("vda", 16 * mib)]) { fx, guest in
                let file = fx.path("textfile/pullback.prom")
                try FileManager.default.createDirectory(atPath: fx.path("textfile"), withIntermediateDirectories: true)
                let option = ["--metrics-file", file]
                let absent = try await guest.pullback(
                    ["backup", "absent", "--repo", guest.repo, "--connect", guest.uri] + option)
                expectCleanFailure(absent)
                let first = try await MetricsText.read(file, fx)
                #expect(first.names(of: "absent") == MetricsText.failureNames, "\(first)")
                #expect(first.value("pullback_backup_failures_total", "absent") == 1, "\(first)")
                #expect(first.value("pullback_backup_consecutive_failures", "absent") == 1, "\(first)")

                try await guest.write("vda", "write -P 0x5a 1M 2M")
                let (start, full) = (Date().timeIntervalSince1970, try await guest.backup(option))
                let end = Date().timeIntervalSince1970
                try requireSuccess(full)
                let fullSummary = try BackupSummary.decode(full)
                let afterFull = try await MetricsText.read(file, fx)
                try Self.expectSuccess(afterFull, guest, fullSummary, failures: 0)
                let success = try #require(
                    afterFull.value("pullback_backup_last_success_timestamp_seconds", guest.name))
                #expect(start <= success && success <= end, "\(success) outside \(start)...\(end)")
                #expect(afterFull.series(of: "absent") == first.series(of: "absent"), "\(afterFull)")

                let failed = try await guest.backup(["--disk", "vdz"] + option)
                expectCleanFailure(failed, mentioning: ["vdz"])
                let afterFailure = try await MetricsText.read(file, fx)
                #expect(afterFailure.value("pullback_backup_failures_total", guest.name) == 1, "\(afterFailure)")
                #expect(afterFailure.value("pullback_backup_consecutive_failures", guest.name) == 1, "\(afterFailure)")
                let kept = { (metrics: MetricsText) in
                    metrics.series(of: guest.name).filter {
                        ![
                            "pullback_backup_last_run_timestamp_seconds", "pullback_backup_failures_total",
                            "pullback_backup_consecutive_failures",
                        ].contains($0.name)
                    }
                }
                #expect(kept(afterFailure) == kept(afterFull), "the last success's series changed: \(afterFailure)")
                #expect(
                    afterFailure.value("pullback_backup_last_run_timestamp_seconds", guest.name)! >= success,
                    "\(afterFailure)")

                try await guest.write("vda", "write -P 0x77 8M 1M")
                let incremental = try await guest.backup(option)
                try requireSuccess(incremental)
                let afterIncremental = try await MetricsText.read(file, fx)
                try Self.expectSuccess(afterIncremental, guest, try BackupSummary.decode(incremental), failures: 1)
                #expect(afterIncremental.series(of: "absent") == first.series(of: "absent"), "\(afterIncremental)")
            }
        }

        /// `metrics` has `guest`'s series of the successful backup `summary`, after `failures` failed runs.
        static func expectSuccess(
            _ metrics: MetricsText, _ guest: LibvirtGuest, _ summary: BackupSummary, failures: Double,
            sourceLocation: SourceLocation = #_sourceLocation
        ) throws {
            let domain = guest.name
            #expect(metrics.names(of: domain) == MetricsText.successNames, "\(metrics)", sourceLocation: sourceLocation)
            let other = summary.level == "full" ? "incremental" : "full"
            let expected: [(String, String?, Double)] = [
                ("pullback_backup_last_level", summary.level, 1), ("pullback_backup_last_level", other, 0),
                ("pullback_backup_last_read_bytes", nil, Double(summary.disks.reduce(0) { $0 + $1.bytesRead })),
                ("pullback_backup_last_written_bytes", nil, Double(try Self.bytes(in: guest, summary.point))),
                ("pullback_backup_last_duration_seconds", nil, summary.seconds),
                ("pullback_backup_last_missing_disks", nil, 0), ("pullback_backup_failures_total", nil, failures),
                ("pullback_backup_consecutive_failures", nil, 0),
            ]
            for (name, level, value) in expected {
                #expect(
                    metrics.value(name, domain, level: level) == value, "\(name) \(level ?? ""): \(metrics)",
                    sourceLocation: sourceLocation)
            }
            #expect(
                metrics.value("pullback_backup_last_success_timestamp_seconds", domain)
                    == metrics.value("pullback_backup_last_run_timestamp_seconds", domain), "\(metrics)",
                sourceLocation: sourceLocation)
            #expect(summary.level == (failures == 0 ? "full" : "incremental"), "\(summary)")
        }

        /// The sizes of the files of `point`'s folder in the guest's repository, added up.
        static func bytes(in guest: LibvirtGuest, _ point: String) throws -> Int64 {
            let folder = "\(guest.repo)/\(guest.name)/\(point)"
            return try FileManager.default.contentsOfDirectory(atPath: folder).reduce(0) { total, name in
                let attributes = try FileManager.default.attributesOfItem(atPath: "\(folder)/\(name)")
                return total + ((attributes[.size] as? NSNumber)?.int64Value ?? 0)
            }
        }

        @Test(
            "Failed runs ending together keep every domain's series, and a label with a quote, a backslash and a newline counts on",
            .timeLimit(.minutes(1)))
        func concurrentRuns() async throws {
            try await Fixture.run { fx in
                let binary = try Pullback.binaryPath()
                let repo = fx.path("repo")
                try requireSuccess(try await fx.run([binary, "init", "--repo", repo]))
                let file = fx.path("pullback.prom")
                let odd = "quote\" back\\slash\nnew line"
                let domains = (1...4).map { "absent-\($0)" } + [odd]
                let results = try await withThrowingTaskGroup(of: CommandResult.self) { group in
                    for domain in domains {
                        group.addTask {
                            try await fx.run([
                                binary, "backup", domain, "--repo", repo, "--connect", "test:///default",
                                "--metrics-file", file,
                            ])
                        }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                for result in results { expectCleanFailure(result) }
                let together = try await MetricsText.read(file, fx)
                for domain in domains {
                    #expect(together.value("pullback_backup_failures_total", domain) == 1, "\(domain): \(together)")
                }
                let again = try await fx.run([
                    binary, "backup", odd, "--repo", repo, "--connect", "test:///default", "--metrics-file", file,
                ])
                expectCleanFailure(again)
                let after = try await MetricsText.read(file, fx)
                #expect(after.value("pullback_backup_failures_total", odd) == 2, "\(after)")
                #expect(after.value("pullback_backup_consecutive_failures", odd) == 2, "\(after)")
                #expect(Set(after.samples.compactMap { $0.labels["domain"] }) == Set(domains), "\(after)")
            }
        }

        @Test("--metrics-file in a folder that does not exist is an argument error (exit 64)", .timeLimit(.minutes(1)))
        func missingFolder() async throws {
            try await Fixture.run { fx in
                let result = try await fx.run([
                    try Pullback.binaryPath(), "backup", "web1", "--repo", fx.path("repo"), "--metrics-file",
                    fx.path("none/pullback.prom"),
                ])
                #expect(result.exitCode == 64 && result.stderr.contains("--metrics-file"), "\(result)")
                #expect(!FileFacts.exists(fx.path("none")) && !FileFacts.exists(fx.path("repo")))
            }
        }
    }
}

/// A metrics file's samples as Python's Prometheus client parsed them (Tests/Fixtures/prometheus-text.py).
struct MetricsText: CustomStringConvertible {
    struct Sample: Decodable, Equatable {
        let family: String
        let type: String
        let name: String
        let labels: [String: String]
        let value: Double
    }

    let samples: [Sample]

    /// The series names of a domain that only failed, and of one that succeeded (the level's twice).
    static let failureNames = [
        "pullback_backup_consecutive_failures", "pullback_backup_failures_total",
        "pullback_backup_last_run_timestamp_seconds",
    ]
    static let successNames = [
        "pullback_backup_consecutive_failures", "pullback_backup_failures_total",
        "pullback_backup_last_duration_seconds",
        "pullback_backup_last_level", "pullback_backup_last_level", "pullback_backup_last_missing_disks",
        "pullback_backup_last_read_bytes", "pullback_backup_last_run_timestamp_seconds",
        "pullback_backup_last_success_timestamp_seconds", "pullback_backup_last_written_bytes",
    ]

    /// Parses `path`; the parser must accept it, and every family must have the type its name says.
    static func read(_ path: String, _ fx: Fixture, sourceLocation: SourceLocation = #_sourceLocation) async throws
        -> MetricsText
    {
        let script = "\(CopyIntegration.MetricsFileTests.root)/Tests/Fixtures/prometheus-text.py"
        let result = try await fx.run(["/usr/bin/python3", script, path])
        try #require(result.succeeded, "\(result)", sourceLocation: sourceLocation)
        let metrics = MetricsText(samples: try JSONDecoder().decode([Sample].self, from: Data(result.stdout.utf8)))
        for sample in metrics.samples {
            let type = sample.name.hasSuffix("_total") ? "counter" : "gauge"
            #expect(sample.type == type, "\(sample)", sourceLocation: sourceLocation)
        }
        return metrics
    }

    /// The samples labelled with `domain`, sorted by name and labels.
    func series(of domain: String) -> [Sample] {
        samples.filter { $0.labels["domain"] == domain }.sorted {
            ($0.name, $0.labels["level"] ?? "") < ($1.name, $1.labels["level"] ?? "")
        }
    }

    func names(of domain: String) -> [String] { series(of: domain).map(\.name) }

    /// The value of `name` for `domain` (and `level`), if the file has it.
    func value(_ name: String, _ domain: String, level: String? = nil) -> Double? {
        samples.first { $0.name == name && $0.labels["domain"] == domain && $0.labels["level"] == level }?.value
    }

    var description: String {
        samples.map { "\($0.name)\($0.labels.sorted { $0.key < $1.key }) \($0.value)" }.joined(separator: "\n")
    }
}
