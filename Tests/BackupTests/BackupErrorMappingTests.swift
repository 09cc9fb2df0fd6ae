import Libvirt
import Repository
import Testing

@testable import Backup

@Suite("How each use case's failures become BackupErrors")
struct BackupErrorMappingTests {
    struct Unrelated: Error, CustomStringConvertible {
        var description: String { "the copy broke" }
    }

    @Test(
        "libvirt's and the repository's errors keep their message and cause; anything else from a body is a copy error")
    func mapping() async {
        let libvirt = BackupError(LibvirtError(.noDomain, "no domain web1"))
        #expect(libvirt.code == .libvirt && libvirt.message == "no domain web1")
        #expect((libvirt.cause as? LibvirtError)?.code == .noDomain)
        let repository = BackupError(thrownBy: RepositoryError(.locked, "web1 is locked"))
        #expect(repository.code == .repository && repository.message == "web1 is locked")
        #expect((repository.cause as? RepositoryError)?.code == .locked)
        let passed = BackupError(thrownBy: BackupError(.interrupted, "stopped"))
        #expect(passed.code == .interrupted && passed.message == "stopped")
        let other = BackupError(thrownBy: Unrelated())
        #expect(other.code == .copy && other.message == "the copy broke")
        await #expect {
            try await RunStep.transaction { throw Unrelated() }
        } throws: { error in
            (error as? BackupError)?.code == .copy
        }
        #expect {
            try VerifyStep.repository { () throws(RepositoryError) in throw RepositoryError(.locked, "held") }
        } throws: { error in
            (error as? BackupError)?.message == "held"
        }
    }
}
