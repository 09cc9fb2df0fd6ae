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

@Suite("A path a checkpoint's description cannot hold is left out of it")
struct UnrecordablePathTests {
    @Test(
        "a path with a character XML 1.0 cannot hold, or a carriage return, is left out: the tag alone",
        arguments: ["/tmp/e\u{1}x", "/tmp/e\u{1f}x", "/tmp/e\rx", "/tmp/e\u{fffe}x", "/tmp/e\u{ffff}x"])
    func leftOut(root: String) throws {
        let name = "pullback-0123abcd-20261129T170722Z"
        let text = CheckpointDescription.text(for: name, repository: root)
        #expect(text == "pullback repository 0123abcd")
        #expect(CheckpointDescription.repository(in: text) == nil)
        #expect(CheckpointDescription.isPathLeftOut(text))
        let xml = BackupXML.checkpoint(name: name, description: text, disks: ["vda"], skipped: [])
        #expect(xml.unicodeScalars.allSatisfy(BackupXML.isRecordable), "\(xml)")
        #expect(try DomainCheckpoint.descriptionText(inXML: xml) == text)
    }

    @Test("tabs, line feeds and any other Unicode stay in the path")
    func kept() {
        let root = "/tmp/a\tb\nc\u{85}d\u{202e}é"
        let text = CheckpointDescription.text(for: "pullback-0123abcd-1", repository: root)
        #expect(text == "pullback repository 0123abcd at \(root)")
        #expect(!CheckpointDescription.isPathLeftOut(text))
        #expect(!CheckpointDescription.isPathLeftOut("pullback repository 0123abcd at /x"))
        #expect(!CheckpointDescription.isPathLeftOut("pullback"))
    }
}

@Suite("What --remove tells the user to run is quoted for a shell")
struct CheckpointRemovalMessageTests {
    static let domain = "evil$(touch PWNED)"

    static func listed(_ holding: ListedCheckpoint.Holding, repository: String?) -> ListedCheckpoint {
        ListedCheckpoint(
            name: "pullback-0123abcd-1", tag: "0123abcd", repository: repository, holdsPoint: holding, detail: nil)
    }

    @Test("--tag of a repository still there names it by a quoted --repo, with the domain quoted")
    func stillThere() {
        let path = "/srv/x $(reboot) 'q'"
        let message = CheckpointRemoval.refusal(
            [Self.listed(.yes, repository: path)], tag: "0123abcd", domain: Self.domain)
        #expect(
            message
                == "the repository \(path) (tag 0123abcd) is still there and holds points made with one of these checkpoints: remove only those it holds no point for with `pullback checkpoints 'evil$(touch PWNED)' --remove --repo '/srv/x $(reboot) '\\''q'\\'''`, or add --all to remove them all (its next backup of evil$(touch PWNED) will then be a full); nothing was removed"
        )
    }

    @Test("--tag of a checkpoint whose repository is unknown or unreadable is refused, pointing to --repo and --all")
    func unknown() {
        let listed = [Self.listed(.unknown, repository: nil), Self.listed(.unreadable, repository: "/x")]
        #expect(
            CheckpointRemoval.refusal(listed, tag: "0123abcd", domain: Self.domain)
                == "2 checkpoints of repository 0123abcd record no repository path or one that cannot be read, so a live repository may continue from them: check them against the repository with `pullback checkpoints 'evil$(touch PWNED)' --remove --repo DIR`, or add --all to remove them anyway; nothing was removed"
        )
        #expect(CheckpointRemoval.refusal([Self.listed(.gone, repository: "/x")], tag: "0123abcd", domain: "d") == nil)
    }

    @Test("a checkpoint a copy of the repository made says whose it is, with a quoted command")
    func elsewhere() {
        let path = "/srv/a b"
        #expect(
            CheckpointRemoval.elsewhere(Self.listed(.yes, repository: path), path, Self.domain)
                == "held by the repository at /srv/a b, a copy of this one shares its id")
        #expect(
            CheckpointRemoval.elsewhere(Self.listed(.no, repository: path), path, Self.domain)
                == "made by the repository at /srv/a b, a copy of this one shares its id; `pullback checkpoints 'evil$(touch PWNED)' --remove --repo '/srv/a b'` removes it"
        )
    }
}
