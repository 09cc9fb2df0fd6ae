import Foundation
import Sealing
import Storage
import TestSupport

/// A folder store in a temporary directory and the sealed store over it, with small frames (4 KiB) so that objects
/// of many frames stay small; a staged name `<id>.partial/x` has the logical name `<id>/x`, as in a repository.
struct SealingFixture {
    let directory: TemporaryDirectory
    let folder: FolderStore
    let key: SealingKey
    let layout: SealedLayout
    let store: SealedStore

    init(key: SealingKey = .random(), frameShift: UInt8 = 12) throws {
        directory = try TemporaryDirectory("pbseal")
        folder = FolderStore(root: directory.path + "/store")
        try folder.createRoot()
        self.key = key
        layout = SealedLayout(frameShift: frameShift)!
        store = Self.sealed(folder, key: key, layout: layout)
    }

    var frameSize: Int { Int(layout.frameSize) }

    /// The store over `folder` under `key`.
    func sealed(_ folder: FolderStore, key: SealingKey) -> SealedStore {
        Self.sealed(folder, key: key, layout: layout)
    }

    static func sealed(_ folder: FolderStore, key: SealingKey, layout: SealedLayout) -> SealedStore {
        SealedStore(folder, key: key, layout: layout) { key in
            key.description.replacingOccurrences(of: ".partial/", with: "/")
        }
    }

    /// The path of `key`'s sealed file.
    func path(_ key: ObjectKey) -> String { folder.location(of: key) }

    /// The sealed bytes of `key`.
    func sealedBytes(_ key: ObjectKey) throws -> [UInt8] {
        try [UInt8](Data(contentsOf: URL(fileURLWithPath: path(key))))
    }

    /// Replaces the sealed bytes of `key`.
    func replaceSealedBytes(_ key: ObjectKey, _ bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path(key)))
    }

    /// Where frame `index` starts in a sealed object.
    func frameOffset(_ index: Int) -> Int { SealedLayout.headerSize + index * (frameSize + SealedLayout.tagSize) }

    /// Writes `content` as `key` by appending it in pieces of 1 to 3 frames' size, as `seed` picks.
    func append(_ content: [UInt8], to key: ObjectKey, seed: UInt64 = 1) throws {
        let writer = try store.create(key)
        var generator = SeededRandom(seed: seed)
        var start = 0
        while start < content.count {
            let end = min(content.count, start + Int.random(in: 1...(3 * frameSize), using: &generator))
            try content[start..<end].withUnsafeBytes { try writer.append($0) }
            start = end
        }
        try writer.finish()
    }

    /// The whole plaintext of `key` through the sealed store.
    func read(_ key: ObjectKey) throws -> [UInt8]? {
        try store.read(key, limit: 1 << 30)
    }
}
