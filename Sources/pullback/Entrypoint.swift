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
            var command = try Pullback.parseAsRoot()
            if var asynchronous = command as? AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
            code = 0
        } catch {
            let message = Pullback.fullMessage(for: error)
            if !message.isEmpty {
                let isHelp = Pullback.exitCode(for: error) == .success
                if isHelp { print(message) } else { FileHandle.standardError.write(Data((message + "\n").utf8)) }
            }
            code = Pullback.exitCode(for: error).rawValue
        }
        // Leave without running exit handlers: libvirt's in-process (embedded) QEMU driver keeps threads
        // that can crash while the process tears down its globals, after all the work is done.
        fflush(nil)
        _exit(code)
    }
}
