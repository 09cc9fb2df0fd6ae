import ArgumentParser
import Foundation
import QCOW2
import Server

/// `pullback serve --image FILE... --socket PATH`: plain images exported read-only over NBD until SIGINT or SIGTERM.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Export images read-only over NBD until SIGINT or SIGTERM.",
        discussion: """
            Each image (a qcow2 image with its backing chain, or a raw image) is an export named by its file name. \
            Clients may read, ask for block status (base:allocation) and open several connections; writes are \
            refused. The socket is created 0600; its URIs are printed once clients can connect.
            """
    )

    @Option(name: .customLong("image"), help: "An image to export under its file name (repeat for more).")
    var images: [String] = []

    @Option(help: "The unix socket to listen on; must not exist yet.")
    var socket: String

    func validate() throws {
        guard !images.isEmpty else { throw ValidationError("give at least one --image FILE to export") }
        let names = images.map { URL(fileURLWithPath: $0).lastPathComponent }
        guard Set(names).count == names.count else {
            throw ValidationError("two images have the same file name; exports are named by file name")
        }
    }

    func run() async throws {
        var exports: [ServedExport] = []
        for path in images {
            let chain: QCOW2Chain
            do {
                chain = try QCOW2Chain.open(path: path)
            } catch let error where error.code == .notQCOW2 {
                do { chain = try QCOW2Chain.open(path: path, format: .raw) } catch {
                    throw ValidationError("cannot export \(path): \(error.message)")
                }
            } catch {
                throw ValidationError("cannot export \(path): \(error.message)")
            }
            exports.append(ServedExport(name: URL(fileURLWithPath: path).lastPathComponent, chain: chain))
        }
        let socket = socket
        let served = exports
        try await Interruptible.run { () async throws(NBDServer.StartFailure) in
            try await NBDServer.serve(served, socketPath: socket) {
                let lines = served.map { "nbd+unix:///\($0.name)?socket=\(socket)\n" }.joined()
                FileHandle.standardOutput.write(Data(lines.utf8))
            }
        } describe: {
            $0.message
        }
    }
}
