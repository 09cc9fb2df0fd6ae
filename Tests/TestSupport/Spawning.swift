import Foundation
import Subprocess
import SystemPackage

/// The one way tests start a program, through Subprocess.
///
/// Subprocess gives every child an empty signal mask and default signal actions (a test runs on a thread that blocks
/// most signals; a child inheriting that mask could be neither interrupted nor stopped) and closes every descriptor
/// above stderr (a leaked pipe of the test runner's keeps `swift test` waiting for EOF). On top of that each child
/// here gets a process group of its own, so that signals for teardown reach its children too, `/dev/null` as stdin,
/// and stdout and stderr in files: a pipe nobody reads could fill up and block it.
enum Spawning {
    /// How long a child has after SIGTERM to its group before SIGKILL: qemu-nbd behind a throttle drains its queue
    /// first.
    static let gracePeriod: Duration = .seconds(3)

    static func configuration(_ command: [String]) throws -> Configuration {
        guard let program = command.first else { throw HarnessError("an empty command") }
        var options = PlatformOptions()
        options.processGroupID = 0
        options.teardownSequence = [.gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: gracePeriod)]
        return Configuration(
            executable: program.contains("/") ? .path(FilePath(program)) : .name(program),
            arguments: Arguments(Array(command.dropFirst())),
            platformOptions: options)
    }

    /// A file the child writes one of its outputs to, created or truncated; Subprocess closes our copy once the
    /// child has started.
    static func logFile(_ path: String) throws -> FileDescriptorOutput {
        let descriptor = try FileDescriptor.open(
            FilePath(path), .writeOnly, options: [.create, .truncate],
            permissions: [.ownerReadWrite, .groupRead, .otherRead])
        return .fileDescriptor(descriptor, closeAfterSpawningProcess: true)
    }

    /// What a child wrote to a log file so far ("" when there is none).
    static func contents(_ path: String) -> String {
        (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    }
}

/// How a child ended.
enum Ending: Sendable {
    case exited(Int32)
    case signaled(Int32)

    init(_ status: TerminationStatus) {
        switch status {
        case .exited(let code): self = .exited(code)
        case .signaled(let signal): self = .signaled(signal)
        }
    }

    func result(of command: [String], stdoutPath: String, stderrPath: String) -> CommandResult {
        let (exitCode, signal): (Int32, Int32?) =
            switch self {
            case .exited(let code): (code, nil)
            case .signaled(let signal): (128 + signal, signal)
            }
        return CommandResult(
            command: command, exitCode: exitCode, signal: signal, stdout: Spawning.contents(stdoutPath),
            stderr: Spawning.contents(stderrPath))
    }
}
