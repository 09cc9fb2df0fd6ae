import ArgumentParser
import Foundation
import NBD
import Probe

/// `pullback probe`: an NBD server checked against the protocol, one verdict per rule.
struct ProbeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Check an NBD server against the protocol: one pass, fail or skip per rule; exit 0 when none fails.",
        discussion: """
            URI is nbd://HOST[:PORT]/EXPORT, nbd+unix:///EXPORT?socket=PATH, or with TLS nbds://... (certificates \
            from tls-certificates= or --tls-certificates: ca-cert.pem, and client-cert.pem with client-key.pem). The \
            probe speaks the protocol itself, byte by byte, and samples the export rather than reading it all. Only \
            with --write does it write, zero and trim: give it a scratch export.
            """
    )

    @Argument(help: "The NBD server and export.")
    var uri: String

    @Flag(help: "Print the report as one JSON object.")
    var json = false

    @Option(help: ArgumentHelp("Also write the report as JUnit XML to this file.", valueName: "file"))
    var junit: String?

    @Flag(help: "Write, zero and trim the export to check those commands (its data is lost).")
    var write = false

    @Option(help: "Connections opened at once by the checks that compare them (1-16).")
    var connections = 4

    @Option(
        parsing: .upToNextOption,
        help: ArgumentHelp("Run only these checks or groups (handshake, read.past-end, ...).", valueName: "check"))
    var only: [String] = []

    @Option(help: "Seconds any read may wait for the server before its check fails (1-600).")
    var stallTimeout = 10

    @Option(
        help: ArgumentHelp(
            "With nbds://: the client's TLS folder (ca-cert.pem, client-cert.pem, client-key.pem).", valueName: "dir"),
        completion: .directory)
    var tlsCertificates: String?

    func validate() throws {
        guard (1...16).contains(connections) else { throw ValidationError("--connections must be 1-16") }
        guard (1...600).contains(stallTimeout) else { throw ValidationError("--stall-timeout must be 1-600 seconds") }
        let names = Probe.checkNames
        for name in only where !names.contains(where: { $0 == name || $0.hasPrefix(name + ".") }) {
            throw ValidationError(
                "--only \(Terminal.escaped(name)) names no check; the checks are \(names.joined(separator: ", "))")
        }
    }

    func run() async throws {
        let parsed: NBDURI
        do { parsed = try NBDURI(parsing: uri) } catch {
            Terminal.printError(error.message)
            throw ExitCode(64)
        }
        var options = ProbeOptions(
            uriText: uri, uri: parsed, write: write, connections: connections, only: only,
            stallTimeout: .seconds(stallTimeout))
        if parsed.requiresTLS {
            do throws(ProbeError) {
                options.tls = try ProbeTLS.context(certificates: tlsCertificates ?? parsed.tlsCertificates)
            } catch {
                Terminal.printError(error.message)
                throw ExitCode.failure
            }
        }
        let report = await Probe.run(options)
        if let junit {
            do { try Data(report.junitXML.utf8).write(to: URL(fileURLWithPath: junit), options: .atomic) } catch {
                Terminal.printError("cannot write \(junit): \(error.localizedDescription)")
                throw ExitCode.failure
            }
        }
        if json {
            print(try JSONOutput.line(report))
        } else {
            let width = report.checks.map(\.name.count).max() ?? 0
            for check in report.checks {
                let name = check.name.padding(toLength: width, withPad: " ", startingAt: 0)
                print(Terminal.escaped("\(check.result.rawValue)  \(name)  \(check.reason ?? "")"))
            }
            print(
                "\(report.count(.pass)) passed, \(report.count(.fail)) failed, \(report.count(.skip)) skipped in "
                    + String(format: "%.1f s", report.seconds))
        }
        if report.failed { throw ExitCode.failure }
    }
}
