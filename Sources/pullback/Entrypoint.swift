import ArgumentParser
import Foundation
import PullbackCommands

#if canImport(Glibc)
    import Glibc
#endif

@main
struct Entrypoint {
    static func main() async {
        // A peer that goes away must be an error on the call that wrote to it, not the death of the process.
        signal(SIGPIPE, SIG_IGN)
        let code: Int32
        do {
            if let refusal = ArgumentFailure.unknownHelpTopic(in: Array(CommandLine.arguments.dropFirst())) {
                FileHandle.standardError.write(Data((refusal + "\n").utf8))
                throw ExitCode.validationFailure
            }
            var command = try await Pullback.asyncParseAsRoot()
            if var asynchronous = command as? AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
            code = 0
        } catch {
            if Pullback.exitCode(for: error) == .success {
                // --help, help COMMAND, --version: text asked for, on stdout.
                let text = Pullback.fullMessage(for: error)
                if !text.isEmpty { print(text) }
            } else if let line = ArgumentFailure.line(for: error) {
                FileHandle.standardError.write(Data((line + "\n").utf8))
            }
            code = Pullback.exitCode(for: error).rawValue
        }
        // Leave without running exit handlers: libvirt's in-process (embedded) QEMU driver keeps threads
        // that can crash while the process tears down its globals, after all the work is done.
        fflush(nil)
        _exit(code)
    }
}
