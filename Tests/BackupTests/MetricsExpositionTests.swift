import Testing

@testable import Backup

/// The metrics file's text: what swift-prometheus writes for the domains' metrics reads back as the same metrics.
@Suite("Metrics exposition")
struct MetricsExpositionTests {
    static let outcome = BackupOutcome(
        domain: "web01", point: "20261205T180000Z", level: "incremental", reason: "the chain continues",
        parent: "20261204T180000Z", checkpoint: "pullback-1",
        disks: [
            .init(target: "vda", mode: "incremental", bytesRead: 3 << 20, retries: 0),
            .init(target: "vdb", mode: "incremental", bytesRead: 5, retries: 1),
        ],
        skipped: [], missing: [.init(target: "vdc", reason: "raw")], seconds: 12.375)

    @Test("a success then a failure: the last success's numbers stay, the failures count, and the text reads back")
    func roundTrip() {
        var web = DomainBackupMetrics()
        web.recordSuccess(Self.outcome, bytesWritten: 1_234_567, at: 1_764_957_600.5)
        web.recordFailure(at: 1_764_961_200)
        var odd = DomainBackupMetrics()
        odd.recordFailure(at: 1_764_961_201)
        odd.recordFailure(at: 1_764_961_202)
        let domains = ["web01": web, "a \"quoted\"\\name\nwith a newline": odd]
        let text = String(decoding: BackupMetricsExposition.text(of: domains), as: UTF8.self)
        #expect(BackupMetricsExposition.domains(in: text) == domains, "\(text)")
        #expect(
            web.values == [
                .lastRunTime: 1_764_961_200, .lastSuccessTime: 1_764_957_600.5, .lastDuration: 12.375,
                .lastBytesRead: Double((3 << 20) + 5), .lastBytesWritten: 1_234_567, .lastMissingDisks: 1,
                .failures: 1, .consecutiveFailures: 1,
            ])
        #expect(web.level == "incremental")
        #expect(odd.values == [.lastRunTime: 1_764_961_202, .failures: 2, .consecutiveFailures: 2])
        #expect(text.contains("# TYPE pullback_backup_failures_total counter\n"), "\(text)")
        #expect(text.contains(#"pullback_backup_last_level{domain="web01",level="full"} 0.0"#), "\(text)")
    }

    @Test("lines that are not Pullback's series, comments, timestamps and damaged lines are skipped, not fatal")
    func foreignLines() {
        let text = """
            # HELP node_load1 1m load average.
            node_load1 0.5
            pullback_backup_failures_total{domain="db"} 3 1764961200000
            pullback_backup_consecutive_failures{domain="db} 2
            pullback_backup_last_level{domain="db",level="full"} 1
            pullback_backup_last_read_bytes 7
            """
        #expect(
            BackupMetricsExposition.domains(in: text)
                == ["db": DomainBackupMetrics(values: [.failures: 3], level: "full")])
    }

    @Test("a sample line's name, labels (unescaped) and value")
    func sampleLine() {
        #expect(
            ExpositionSample(line: #"m{a="x\"y\\z\n",b=""} -1.5e+03"#)
                == ExpositionSample(name: "m", labels: ["a": "x\"y\\z\n", "b": ""], value: -1500))
        #expect(ExpositionSample(line: "m +Inf")?.value == .infinity)
        #expect(ExpositionSample(line: "# TYPE m gauge") == nil)
        #expect(ExpositionSample(line: #"m{a="x\q"} 1"#) == nil)
        #expect(ExpositionSample(line: "m 1 2 3") == nil)
    }
}
