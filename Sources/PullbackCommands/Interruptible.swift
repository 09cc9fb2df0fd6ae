import ArgumentParser
import Backup
import Dispatch
import Engine
import Foundation
import Synchronization

/// Runs a command's work so that SIGINT and SIGTERM cancel it cleanly instead of killing the process:
/// the work sees cancellation, cleans up (temporary files, markers) and reports; the exit code is then
/// 128 + the signal number, as a shell expects.
enum Interruptible {
    static func run<Result: Sendable, Failure: Error>(
        _ work: @escaping @Sendable () async throws(Failure) -> Result,
        describe: (Failure) -> String, report: (String) -> Void = { Terminal.printError($0) }
    ) async throws -> Result {
        let task = Task { () async throws -> Result in try await work() }
        let received = SignalLatch()
        let sources = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                received.set(number)
                task.cancel()
            }
            source.resume()
            return source
        }
        defer {
            for source in sources { source.cancel() }
        }
        do {
            return try await task.value
        } catch {
            report((error as? Failure).map(describe) ?? "\(error)")
            if let signal = received.value { throw ExitCode(128 + signal) }
            throw ExitCode.failure
        }
    }

    static func run<Result: Sendable>(
        _ work: @escaping @Sendable () async throws(CopyError) -> Result
    ) async throws -> Result {
        try await run(work) { $0.message }
    }

    /// Runs `work` as above for a command whose notes go through `log`: its failure is written as `log` writes
    /// events, and the notes `log` kept are written once it has succeeded.
    static func run<Result: Sendable>(
        logging log: StderrLog, _ work: @escaping @Sendable () async throws(BackupError) -> Result
    ) async throws -> Result {
        let result = try await run(work) {
            $0.message
        } report: {
            log.fail($0)
        }
        log.flush()
        return result
    }
}

/// The first signal received, set from the signal handler's queue.
final class SignalLatch: Sendable {
    private let storage = Mutex<Int32?>(nil)
    func set(_ signal: Int32) { storage.withLock { if $0 == nil { $0 = signal } } }
    var value: Int32? { storage.withLock { $0 } }
}
