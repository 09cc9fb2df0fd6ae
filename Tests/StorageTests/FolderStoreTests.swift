import Foundation
import Storage
import SystemPackage
import TestSupport
import Testing

/// The folder store on a real temporary folder: keys confined, writes visible only when finished, listing,
/// deletion, groups published by rename, locks, modes.
@Suite struct FolderStoreTests {
    func withStore(_ body: (FolderStore, String) throws -> Void) throws {
        let directory = try TemporaryDirectory("pbstore")
        defer { directory.remove() }
        try body(FolderStore(root: directory.path + "/store"), directory.path)
    }

    func key(_ text: String) throws -> ObjectKey { try ObjectKey(text) }

    func mode(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? -1
    }

    @Test func hostileKeysAreRefused() throws {
        for text in ["", "/a", "a/", "a//b", ".", "..", "a/../b", "a/./b", "a\0b", String(repeating: "x", count: 256)] {
            #expect(throws: StoreError.self, "\(text.debugDescription)") { _ = try ObjectKey(text) }
        }
        #expect(throws: StoreError.self) { _ = try ObjectKey(components: ["a", "b/c"]) }
        #expect(throws: StoreError.self) { _ = try ObjectKey(components: []) }
        let valid = try ObjectKey("web1/20260101T000000Z/vda.qcow2")
        #expect(valid.components == ["web1", "20260101T000000Z", "vda.qcow2"])
        #expect(valid.parent?.description == "web1/20260101T000000Z")
        #expect(valid.name == "vda.qcow2")
    }

    @Test func anObjectIsInvisibleUntilFinishedAndReadsBackByRange() throws {
        try withStore { store, _ in
            let object = try key("a/b/data")
            let writer = try store.create(object)
            try ([1, 2, 3, 4, 5] as [UInt8]).withUnsafeBytes { try writer.append($0) }
            #expect(try store.open(object) == nil, "an unfinished object must not be visible")
            #expect(try store.list(under: key("a/b")).allSatisfy { $0.name.hasPrefix(".") })
            try ([6, 7] as [UInt8]).withUnsafeBytes { try writer.append($0) }
            try writer.finish()
            let reader = try #require(try store.open(object))
            #expect(reader.size == 7)
            var buffer = [UInt8](repeating: 0, count: 3)
            let count = try buffer.withUnsafeMutableBytes { try reader.read(into: $0, at: 2) }
            #expect(Array(buffer.prefix(count)) == [3, 4, 5])
            #expect(try store.read(object, limit: 100) == [1, 2, 3, 4, 5, 6, 7])
            #expect(try store.list(under: key("a/b")) == [ObjectEntry(name: "data", kind: .object)])
            #expect(throws: StoreError.self) { _ = try store.read(object, limit: 6) }
        }
    }

    @Test func aDiscardedObjectLeavesNothingAndAnExistingOneIsNotReplaced() throws {
        try withStore { store, _ in
            let object = try key("data")
            try store.write([1], to: object)
            let discarded = try store.create(try key("other"))
            try ([9] as [UInt8]).withUnsafeBytes { try discarded.append($0) }
            discarded.discard()
            let second = try store.create(object)
            try ([2] as [UInt8]).withUnsafeBytes { try second.append($0) }
            let error = #expect(throws: StoreError.self) { try second.finish() }
            #expect(error?.code == .alreadyExists)
            #expect(try store.read(object, limit: 10) == [1])
            #expect(try FileManager.default.contentsOfDirectory(atPath: store.root) == ["data"])
        }
    }

    @Test func listingDeletionAndTreesGoThroughTheStore() throws {
        try withStore { store, _ in
            try store.write([1], to: key("d/p1/m"))
            try store.write([2], to: key("d/p2/m"))
            try store.write([3], to: key("d/x"))
            #expect(
                try store.list(under: key("d")) == [
                    ObjectEntry(name: "p1", kind: .prefix), ObjectEntry(name: "p2", kind: .prefix),
                    ObjectEntry(name: "x", kind: .object),
                ])
            #expect(try store.list(under: key("missing")).isEmpty)
            #expect(try store.kind(of: key("d/x")) == .object)
            try store.delete(key("d/x"))
            try store.delete(key("d/x"))
            try store.deleteTree(key("d/p1"))
            #expect(try store.list(under: key("d")) == [ObjectEntry(name: "p2", kind: .prefix)])
            #expect(throws: StoreError.self) { try store.delete(key("d/p2")) }
        }
    }

    @Test func symbolicLinksAreNeverFollowed() throws {
        try withStore { store, parent in
            let outside = parent + "/outside"
            try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
            try Data([7]).write(to: URL(fileURLWithPath: outside + "/secret"))
            try store.write([1], to: key("real"))
            try FileManager.default.createSymbolicLink(atPath: store.root + "/d", withDestinationPath: outside)
            try FileManager.default.createSymbolicLink(
                atPath: store.root + "/f", withDestinationPath: outside + "/secret")
            let read = #expect(throws: StoreError.self) { _ = try store.open(key("d/secret")) }
            #expect(read?.code == .symbolicLink)
            #expect((#expect(throws: StoreError.self) { _ = try store.open(key("f")) })?.code == .symbolicLink)
            #expect(throws: StoreError.self) { try store.write([2], to: key("d/new")) }
            #expect(throws: StoreError.self) { _ = try store.list(under: key("d")) }
            try store.deleteTree(key("d"))
            try store.delete(key("f"))
            #expect(try FileManager.default.contentsOfDirectory(atPath: outside) == ["secret"])
            #expect(try store.list(under: nil) == [ObjectEntry(name: "real", kind: .object)])
        }
    }

    @Test func anUnreadablePrefixIsAnErrorWithItsErrnoNotAnEmptyList() throws {
        try withStore { store, _ in
            guard getuid() != 0 else { return }  // root reads every folder
            try store.write([1], to: key("d/x"))
            chmod(store.root + "/d", 0)
            defer { chmod(store.root + "/d", 0o700) }
            let error = #expect(throws: StoreError.self) { _ = try store.list(under: key("d")) }
            #expect((error?.cause as? Errno) == .permissionDenied, "\(String(describing: error))")
        }
    }

    @Test func aGroupIsListedOnlyOncePublishedAndCanBeWithdrawn() throws {
        try withStore { store, _ in
            let group = try key("d/p1")
            let staged = try store.beginGroup(group, stagingAt: key("d/p1.partial"))
            #expect(staged.description == "d/p1.partial")
            try store.write([1], to: staged.appending("image"))
            try store.write([2], to: staged.appending("manifest"))
            #expect(try store.kind(of: group) == nil)
            try store.publish(staged, as: group, replacing: false)
            #expect(try store.list(under: key("d")) == [ObjectEntry(name: "p1", kind: .prefix)])
            #expect(try store.read(group.appending("manifest"), limit: 10) == [2])
            let rewritten = try store.beginGroup(group, stagingAt: key("d/p1.rewrite"))
            try store.write([3], to: rewritten.appending("manifest"))
            try store.publish(rewritten, as: group, replacing: true)
            #expect(try store.read(group.appending("manifest"), limit: 10) == [3])
            #expect(try store.read(rewritten.appending("manifest"), limit: 10) == [2], "the old group is staged")
            let left = try store.withdraw(group, to: key("d/p1.removed"), commit: "manifest")
            try store.deleteTree(left)
            try store.deleteTree(rewritten)
            #expect(try store.list(under: key("d")).isEmpty)
        }
    }

    @Test func aLockIsExclusiveNamesItsHolderAndEndsWithItsHolder() throws {
        try withStore { store, _ in
            let lockKey = try key("d/.lock")
            let held = try store.acquireLock(lockKey, owner: "4242", expiry: .seconds(60))
            let refused = #expect(throws: StoreError.self) {
                _ = try store.acquireLock(lockKey, owner: "7", expiry: .seconds(60))
            }
            #expect(refused?.code == .locked)
            #expect(refused?.lockOwner == "4242")
            held.release()
            let second = try store.acquireLock(lockKey, owner: "7", expiry: .seconds(60))
            #expect(second.owner == "7")
            #expect(try store.read(lockKey, limit: 100) == Array("7\n".utf8))
            second.release()
            // A lock file a killed holder left (its flock gone with it) is free at once, whatever it says.
            let third = try store.acquireLock(lockKey, owner: "8", expiry: .seconds(1))
            third.release()
        }
    }

    @Test func filesAre0600AndFolders0700WhateverTheUmask() throws {
        try withStore { store, _ in
            let previous = umask(0)
            defer { umask(previous) }
            try store.write([1], to: key("d/p/f"))
            _ = try store.beginGroup(key("d/q"), stagingAt: key("d/q.partial"))
            _ = try store.acquireLock(key("e/.lock"), owner: "1", expiry: .seconds(1))
            #expect(try mode(store.root) == 0o700)
            #expect(try mode(store.root + "/d") == 0o700)
            #expect(try mode(store.root + "/d/p") == 0o700)
            #expect(try mode(store.root + "/d/q.partial") == 0o700)
            #expect(try mode(store.root + "/d/p/f") == 0o600)
            #expect(try mode(store.root + "/e/.lock") & 0o077 == 0)
            chmod(store.root + "/d/p/f", 0o644)
            chmod(store.root + "/d/p", 0o755)
            #expect(store.makePrivate(try key("d"), depth: 1) == 2)
            #expect(try mode(store.root + "/d/p/f") == 0o600)
            #expect(try mode(store.root + "/d/p") == 0o700)
        }
    }
}
