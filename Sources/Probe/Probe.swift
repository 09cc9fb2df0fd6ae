import NBD
import NBDProtocol

/// `pullback probe`: checks an NBD server against the protocol, rule by rule, each check on connections of its own.
public enum Probe {
    /// Every check, in the order they run.
    static var checks: [ProbeCheck] {
        HandshakeChecks.all + BlockSizeChecks.all + ReadChecks.all + BlockStatusChecks.all + CommandChecks.all
            + RobustnessChecks.all
    }

    /// The names of every check, for `--only` and the README.
    public static var checkNames: [String] { checks.map(\.name) }

    /// Runs the chosen checks against the server; never throws: a server that cannot be reached is one failed check.
    public static func run(_ options: ProbeOptions) async -> ProbeReport {
        let started = ContinuousClock.now
        var report = ProbeReport(uri: options.uriText, export: nil, checks: [], seconds: 0)
        let context: ProbeContext
        do throws(ProbeError) {
            context = try await baseline(options)
        } catch {
            report.checks = [CheckResult(name: "handshake.go", result: .fail, reason: error.message, seconds: 0)]
            report.seconds = (ContinuousClock.now - started).seconds
            return report
        }
        let blockSizes = context.export.blockSizes
        report.export = ProbeReport.Export(
            name: options.uri.exportName, size: context.export.size, flags: context.export.transmissionFlags,
            minimumBlockSize: blockSizes?.minimum, preferredBlockSize: blockSizes?.preferred,
            maximumBlockSize: blockSizes?.maximum, metaContexts: context.listedContexts)
        // Once the server has let a read wait out the stall timeout, the checks after fail at once rather than each
        // waiting as long again: a stalled server costs one timeout, not one per check.
        var stalledIn: String?
        for check in checks where options.chooses(check.name) {
            let checkStarted = ContinuousClock.now
            let verdict: Verdict
            if let stalledIn {
                verdict = .fail("not run: the server stalled in \(stalledIn)")
            } else {
                do throws(ProbeError) { verdict = try await check.run(context) } catch {
                    verdict = .fail(error.message)
                    if error.code == .timedOut { stalledIn = check.name }
                }
            }
            let seconds = (ContinuousClock.now - checkStarted).seconds
            let (result, reason): (CheckResult.Outcome, String?) =
                switch verdict {
                case .pass(let note): (.pass, note)
                case .fail(let reason): (.fail, reason)
                case .skip(let reason): (.skip, reason)
                }
            report.checks.append(CheckResult(name: check.name, result: result, reason: reason, seconds: seconds))
        }
        report.seconds = (ContinuousClock.now - started).seconds
        return report
    }

    /// Lists the export's meta contexts, then negotiates it with structured replies and all of them: what every
    /// check starts from.
    private static func baseline(_ options: ProbeOptions) async throws(ProbeError) -> ProbeContext {
        var context = ProbeContext(
            options: options,
            export: NegotiatedExport(
                size: 0, transmissionFlags: 0, blockSizes: nil, structuredReplies: false, contexts: [:],
                handshakeFlags: 0),
            listedContexts: [])
        context.listedContexts = (try? await HandshakeChecks.listMetaContexts(context)) ?? []
        var plan = NegotiationPlan(export: options.uri.exportName)
        plan.metaContexts = context.listedContexts
        let (connection, export) = try await context.connect(plan)
        await connection.disconnect(export)
        context.export = export
        return context
    }
}

extension Duration {
    /// The duration in seconds.
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
