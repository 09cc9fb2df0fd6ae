import ArgumentParser
import Backup
import Foundation
import QCOW2
import Repository
import Server

/// `pullback serve`: the disks of a backup point, or plain images, exported read-only over NBD until SIGINT or
/// SIGTERM.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Export a backup point's disks, or images, read-only over NBD until SIGINT or SIGTERM.",
        discussion: """
            With --repo, each disk of the point is an export named by its target, with the clusters the point holds \
            (what changed since its parent) as the dirty bitmap backup-<target>. With --image, each image (a qcow2 \
            image with its backing chain, or a raw image) is an export named by its file name. Clients may read, \
            ask for block status and open several connections; writes are refused. The socket is created 0600; its \
            URIs are printed once clients can connect.
            """
    )

    @Option(help: "The repository folder holding the point to serve.")
    var repo: String?

    @Argument(help: "The domain whose point to serve (with --repo).")
    var domain: String?

    @Option(help: "The point to serve: its id, or latest.")
    var at = "latest"

    @Option(name: .customLong("image"), help: "An image to export under its file name (repeat for more).")
    var images: [String] = []

    @Option(help: "The unix socket to listen on; must not exist yet.")
    var socket: String

    func validate() throws {
        guard (repo != nil && domain != nil) != !images.isEmpty else {
            throw ValidationError("serve either a point (--repo DIR DOMAIN) or images (--image FILE...)")
        }
        let names = images.map { URL(fileURLWithPath: $0).lastPathComponent }
        guard Set(names).count == names.count else {
            throw ValidationError("two images have the same file name; exports are named by file name")
        }
    }

    func run() async throws {
        let exports = try repo.map { try pointExports(repository: $0) } ?? imageExports()
        let socket = socket
        try await Interruptible.run { () async throws(NBDServer.StartFailure) in
            try await NBDServer.serve(exports, socketPath: socket) {
                let lines = exports.map { "nbd+unix:///\($0.name)?socket=\(socket)\n" }.joined()
                FileHandle.standardOutput.write(Data(lines.utf8))
            }
        } describe: {
            $0.message
        }
    }

    private func pointExports(repository: String) throws -> [ServedExport] {
        do {
            let point = try BackupRepository(root: repository).point(at, of: domain ?? "")
            return try PointServing.exports(of: point)
        } catch let error as RepositoryError {
            Terminal.printError(error.message)
        } catch let error as BackupError {
            Terminal.printError(error.message)
        }
        throw ExitCode.failure
    }

    private func imageExports() throws -> [ServedExport] {
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
        return exports
    }
}
