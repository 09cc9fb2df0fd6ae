import Foundation
import Libvirt
import Testing

@testable import Backup

@Suite("A checkpoint's description names the repository that made it")
struct CheckpointDescriptionTests {
    @Test("the checkpoint XML carries the repository's tag and absolute path, escaped, and reads back the same")
    func roundTrip() throws {
        let name = "pullback-0123abcd-20261129T170722Z"
        let root = "/srv/a <b> & 'c' \"d\"\nnext/./repo"
        let text = CheckpointDescription.text(for: name, repository: root)
        #expect(text == "pullback repository 0123abcd at /srv/a <b> & 'c' \"d\"\nnext/repo")
        let xml = BackupXML.checkpoint(name: name, description: text, disks: ["vda"], skipped: [])
        #expect(!xml.contains("<b>") && xml.contains("&lt;b&gt; &amp; &apos;c&apos; &quot;d&quot;"), "\(xml)")
        let read = try #require(try DomainCheckpoint.descriptionText(inXML: xml))
        #expect(read == text)
        let named = try #require(CheckpointDescription.repository(in: read))
        #expect(named.tag == "0123abcd" && named.path == "/srv/a <b> & 'c' \"d\"\nnext/repo")
    }

    @Test("a relative repository is recorded by its absolute path")
    func relative() {
        let text = CheckpointDescription.text(for: "pullback-0123abcd-1", repository: "backups/./vm")
        #expect(text == "pullback repository 0123abcd at \(FileManager.default.currentDirectoryPath)/backups/vm")
    }

    @Test(
        "descriptions of older versions, other tools or with a relative path name no repository",
        arguments: [
            "pullback", "", "pullback repository 0123abcd at relative/path", "pullback repository 0123ABCD at /x",
            "pullback repository 0123abc at /x", "made by pullback repository 0123abcd at /x",
        ])
    func notARepository(text: String) {
        #expect(CheckpointDescription.repository(in: text) == nil)
    }

    @Test("a tag is read from a checkpoint name only when it has the form of one")
    func tags() {
        #expect(CheckpointName.tag(of: "pullback-0123abcd-20261129T170722Z") == "0123abcd")
        for name in [
            "pullback-0123abcd-", "pullback-0123abcd", "pullback-0123ABCD-1", "pullback-0123abcd1-x", "x-0123abcd-1",
        ] {
            #expect(CheckpointName.tag(of: name) == nil, "\(name)")
        }
    }
}
