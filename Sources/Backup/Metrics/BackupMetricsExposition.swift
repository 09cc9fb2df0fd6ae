import Prometheus

/// The metrics file's text: Prometheus's text exposition format, as node_exporter's textfile collector reads it.
///
/// Written through swift-prometheus's registry, which names, escapes and types the series; read back by
/// ``ExpositionSample``, since swift-prometheus only writes. Only the series of ``BackupMetric`` and
/// ``levelName`` with a `domain` label are read back: anything else in the file is not Pullback's and is dropped.
public enum BackupMetricsExposition {
    /// The level family: one series per domain and level, 1 for the last successful backup's level, 0 for the other.
    public static let levelName = "pullback_backup_last_level"
    /// The levels the level family has a series for.
    public static let levels = ["full", "incremental"]
    static let levelHelp = "The last successful backup's level: 1 for the level it had, 0 for the other."

    /// Every domain's metrics as the text of a metrics file.
    public static func text(of domains: [String: DomainBackupMetrics]) -> [UInt8] {
        let registry = PrometheusCollectorRegistry()
        for (domain, metrics) in domains.sorted(by: { $0.key < $1.key }) {
            for metric in BackupMetric.allCases {
                guard let value = metrics.values[metric] else { continue }
                let labels = [("domain", domain)]
                if metric.isCounter {
                    let counter = registry.makeCounter(
                        descriptor: descriptor(metric.rawValue, metric.help), labels: labels)
                    counter.increment(by: Int64(exactly: value.rounded()) ?? 0)
                } else {
                    registry.makeGauge(descriptor: descriptor(metric.rawValue, metric.help), labels: labels).set(
                        to: value)
                }
            }
            guard let level = metrics.level else { continue }
            for candidate in levels {
                registry.makeGauge(
                    descriptor: descriptor(levelName, levelHelp), labels: [("domain", domain), ("level", candidate)]
                )
                .set(to: candidate == level ? 1 : 0)
            }
        }
        return registry.emitToBuffer()
    }

    /// The series `name`, whole (Pullback's names carry their unit already), with `help` for its `# HELP` line.
    private static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    /// The metrics of every domain that `text` (an earlier metrics file) has series for.
    public static func domains(in text: String) -> [String: DomainBackupMetrics] {
        var domains: [String: DomainBackupMetrics] = [:]
        for line in text.split(separator: "\n") {
            guard let sample = ExpositionSample(line: line), let domain = sample.labels["domain"] else { continue }
            if let metric = BackupMetric(rawValue: sample.name) {
                domains[domain, default: DomainBackupMetrics()].values[metric] = sample.value
            } else if sample.name == levelName, sample.value == 1, let level = sample.labels["level"] {
                domains[domain, default: DomainBackupMetrics()].level = level
            }
        }
        return domains
    }
}
