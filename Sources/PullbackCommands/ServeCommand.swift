import ArgumentParser
import Backup
import Foundation
import NBD
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
            URIs are printed once clients can connect. With --tls-cert and --tls-key every client must use TLS \
            (nbds://); with --tls-ca too, it must also show a certificate that CA signed.
            """
    )

    @Option(help: "The repository folder holding the point to serve.", completion: .directory)
    var repo: String?

    @Argument(help: "The domain whose point to serve (with --repo).", completion: .repositoryDomain)
    var domain: String?

    @Option(help: "The point to serve: its id, or latest.", completion: .point)
    var at = "latest"

    @OptionGroup var bucketRetries: BucketRetryOption
    @OptionGroup var plainHTTP: PlainHTTPOption
    @OptionGroup var keyFile: KeyFileOption

    @Option(
        name: .customLong("image"), help: "An image to export under its file name (repeat for more).",
        completion: .file())
    var images: [String] = []

    @Option(help: "The unix socket to listen on; must not exist yet.", completion: .file())
    var socket: String?

    @Option(help: "Listen on TCP at HOST:PORT instead (port 0: any free port); needs TLS or --insecure.")
    var listen: String?

    @Option(help: "The server's certificate (PEM): clients must then use TLS.", completion: .file())
    var tlsCert: String?

    @Option(help: "The private key of --tls-cert (PEM, unencrypted).", completion: .file())
    var tlsKey: String?

    @Option(help: "Require client certificates signed by this CA (PEM).", completion: .file())
    var tlsCA: String?

    @Flag(help: "Allow TCP without TLS: anyone who can reach the port reads the disks.")
    var insecure = false

    @Option(help: "Serve at most this many connections at once; more are closed at once.")
    var maxConnections = ServerLimits().maximumConnections

    @Option(help: "Drop a client that has not chosen an export within SECONDS (0: never).")
    var handshakeTimeout: Double = 30

    @Option(help: "Drop a connection on which nothing moves for SECONDS with no request at work (0: never).")
    var idleTimeout: Double = 300

    @Option(help: "Drop a client that leaves its replies unread for SECONDS (0: never).")
    var stallTimeout: Double = 30

    func validate() throws {
        guard (socket != nil) != (listen != nil) else {
            throw ValidationError("give either --socket PATH or --listen HOST:PORT")
        }
        guard (tlsCert != nil) == (tlsKey != nil) else {
            throw ValidationError("give --tls-cert and --tls-key together")
        }
        guard tlsCA == nil || tlsCert != nil else { throw ValidationError("--tls-ca needs --tls-cert and --tls-key") }
        if let listen {
            guard address(listen) != nil else { throw ValidationError("--listen needs HOST:PORT, as 127.0.0.1:10809") }
            guard insecure || tlsCert != nil else {
                throw ValidationError(
                    "TCP without TLS sends the disks in clear: give --tls-cert and --tls-key, or add --insecure to accept that, or use --socket"
                )
            }
        }
        guard (repo != nil && domain != nil) != !images.isEmpty else {
            throw ValidationError("serve either a point (--repo DIR DOMAIN) or images (--image FILE...)")
        }
        guard maxConnections > 0 else { throw ValidationError("--max-connections needs at least 1") }
        for (name, seconds) in [
            ("--handshake-timeout", handshakeTimeout), ("--idle-timeout", idleTimeout),
            ("--stall-timeout", stallTimeout),
        ] {
            guard seconds >= 0, seconds <= 1e9 else { throw ValidationError("\(name) needs a number of seconds") }
        }
        let names = images.map { URL(fileURLWithPath: $0).lastPathComponent }
        guard Set(names).count == names.count else {
            throw ValidationError("two images have the same file name; exports are named by file name")
        }
    }

    func run() async throws {
        let tls = try serverTLS()
        let exports =
            try repo.map { try Self.pointExports(repository: $0, domain: domain ?? "", at: at) }
            ?? Self.imageExports(images)
        let (socket, address) = (socket, listen.flatMap(address))
        let requiresTLS = tls != nil
        let limits = self.limits
        try await Interruptible.run { () async throws(ServerError) in
            if let socket {
                try await NBDServer.serve(exports, socketPath: socket, tls: tls, limits: limits) {
                    Self.print(
                        exports.map {
                            NBDURI(.unix(socket: socket), requiresTLS: requiresTLS, exportName: $0.name).description
                        })
                }
            } else if let address {
                try await NBDServer.serve(
                    exports, host: address.host, port: address.port, tls: tls, limits: limits
                ) { port in
                    let server = NBDURI.Transport.tcp(host: address.host, port: Int(port))
                    Self.print(
                        exports.map { NBDURI(server, requiresTLS: requiresTLS, exportName: $0.name).description })
                }
            }
        } describe: {
            $0.message
        }
    }

    /// The limits given, on top of the library's defaults for reply memory.
    private var limits: ServerLimits {
        let duration = { (seconds: Double) in seconds > 0 ? Duration.milliseconds(Int64(seconds * 1000)) : nil }
        return ServerLimits(
            maximumConnections: maxConnections, handshakeTimeout: duration(handshakeTimeout),
            idleTimeout: duration(idleTimeout), replyStallTimeout: duration(stallTimeout))
    }

    /// The TLS clients must use, read from the files given, or nil without --tls-cert.
    private func serverTLS() throws -> ServerTLS? {
        guard let tlsCert, let tlsKey else { return nil }
        do throws(ServerError) {
            return try ServerTLS(certificate: tlsCert, key: tlsKey, clientCA: tlsCA)
        } catch {
            Terminal.printError(error.message)
            throw ExitCode.failure
        }
    }

    /// `HOST:PORT` (an IPv6 host in brackets), or nil.
    private func address(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65535).contains(port)
        else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port)
    }

    private static func print(_ uris: [String]) {
        FileHandle.standardOutput.write(Data(uris.map { $0 + "\n" }.joined().utf8))
    }

    /// The disks of point `at` of `domain` in `repository`, as exports named by their targets; says what is wrong and
    /// fails when they cannot be.
    static func pointExports(repository: String, domain: String, at: String) throws -> [ServedExport] {
        do {
            let point = try BackupRepository(root: repository).point(at, of: domain)
            return try PointServing.exports(of: point)
        } catch let error as RepositoryError {
            Terminal.printError(error.message)
        } catch let error as BackupError {
            Terminal.printError(error.message)
        }
        throw ExitCode.failure
    }

    /// The images `images` (each with its backing chain, by qemu's rules) as exports named by their file names.
    static func imageExports(_ images: [String]) throws -> [ServedExport] {
        var exports: [ServedExport] = []
        for path in images {
            let chain: QCOW2Chain
            do {
                chain = try QCOW2Chain.openProbing(path: path)
            } catch {
                // The message may quote the image's header (its backing file): printed escaped, as every such string.
                Terminal.printError("cannot export \(path): \(error.message)")
                throw ExitCode.failure
            }
            exports.append(ServedExport(name: URL(fileURLWithPath: path).lastPathComponent, chain: chain))
        }
        return exports
    }
}
