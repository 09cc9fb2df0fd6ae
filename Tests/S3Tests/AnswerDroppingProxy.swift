import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// An HTTP/1.1 proxy on loopback in front of the test store that forwards every request and answer, except that it
/// drops the answer of the first request `dropsAnswer` picks: the store has done the work, the client sees the
/// connection close. What a write whose answer was lost looks like. Only for Content-Length bodies (S3's answers to
/// the calls it is used with).
final class AnswerDroppingProxy: Sendable {
    let port: Int
    private let listener: Int32
    private let upstreamPort: Int
    private let dropsAnswer: @Sendable (String) -> Bool
    private let dropped = Mutex<[String]>([])

    /// The request lines whose answers were dropped.
    var droppedRequests: [String] { dropped.withLock { $0 } }

    init(upstreamPort: Int, dropsAnswer: @escaping @Sendable (_ requestLine: String) -> Bool) throws {
        self.upstreamPort = upstreamPort
        self.dropsAnswer = dropsAnswer
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = Self.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(descriptor, 16) == 0 else { throw POSIXError(.EADDRINUSE) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        listener = descriptor
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread { [self] in acceptLoop() }.start()
    }

    /// Stops accepting; connections already open end with their clients.
    func close() { shutdown(listener, Int32(SHUT_RDWR)) }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { return }
            Thread { [self] in serve(client) }.start()
        }
    }

    private func serve(_ client: Int32) {
        var address = Self.loopback(port: upstreamPort)
        let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer {
            Glibc.close(client)
            Glibc.close(upstream)
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { return }
        var fromClient = [UInt8]()
        var fromUpstream = [UInt8]()
        while let request = Self.readMessage(client, &fromClient, isAnswerToHEAD: false) {
            let requestLine = String(decoding: request.prefix { $0 != UInt8(ascii: "\r") }, as: UTF8.self)
            guard Self.writeAll(upstream, request),
                let answer = Self.readMessage(upstream, &fromUpstream, isAnswerToHEAD: requestLine.hasPrefix("HEAD "))
            else { return }
            let drop = dropped.withLock { list in
                guard list.isEmpty, dropsAnswer(requestLine) else { return false }
                list.append(requestLine)
                return true
            }
            if drop || !Self.writeAll(client, answer) { return }
        }
    }

    /// One message (head and Content-Length body) from `descriptor`, bytes past it kept in `pending`.
    private static func readMessage(_ descriptor: Int32, _ pending: inout [UInt8], isAnswerToHEAD: Bool) -> [UInt8]? {
        let separator = Array("\r\n\r\n".utf8)
        var headEnd: Int?
        var total: Int?
        while true {
            if headEnd == nil, let range = pending.firstRange(of: separator) {
                headEnd = range.upperBound
                let head = String(decoding: pending[..<range.lowerBound], as: UTF8.self).lowercased()
                let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                    .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) }
                total = range.upperBound + (isAnswerToHEAD ? 0 : (length ?? 0))
            }
            if let total, pending.count >= total {
                defer { pending.removeFirst(total) }
                return Array(pending[..<total])
            }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = read(descriptor, &chunk, chunk.count)
            guard count > 0 else { return nil }
            pending += chunk[..<count]
        }
    }

    private static func writeAll(_ descriptor: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            guard written > 0 else { return false }
            offset += written
        }
        return true
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }
}
