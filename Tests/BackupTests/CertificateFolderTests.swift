import Foundation
import TestSupport
import Testing

@testable import Backup

@Suite("A remote backup's client certificate folder is looked at, not guessed at")
struct CertificateFolderTests {
    @Test("a certificate file that cannot be looked at is reported with its errno, not as missing")
    func unreadableFile() throws {
        let directory = try TemporaryDirectory("certs")
        defer { directory.remove() }
        for name in ["client-cert.pem", "client-key.pem"] {
            try Data("x".utf8).write(to: URL(fileURLWithPath: directory.file(name)))
        }
        // A link to itself: stat fails with ELOOP, which is not "nothing is there".
        try FileManager.default.createSymbolicLink(
            atPath: directory.file("ca-cert.pem"), withDestinationPath: "ca-cert.pem")
        let export = RemoteExport(certificates: directory.path)
        #expect(
            export.certificateProblem()
                == "cannot look at \(directory.path)/ca-cert.pem: Too many levels of symbolic links")
        try FileManager.default.removeItem(atPath: directory.file("ca-cert.pem"))
        #expect(export.certificateProblem() == "\(directory.path) lacks ca-cert.pem")
        try FileManager.default.createDirectory(
            atPath: directory.file("ca-cert.pem"), withIntermediateDirectories: false)
        #expect(export.certificateProblem() == "\(directory.path) lacks ca-cert.pem")
        try FileManager.default.removeItem(atPath: directory.file("ca-cert.pem"))
        try Data("x".utf8).write(to: URL(fileURLWithPath: directory.file("ca-cert.pem")))
        #expect(export.certificateProblem() == nil)
    }
}
