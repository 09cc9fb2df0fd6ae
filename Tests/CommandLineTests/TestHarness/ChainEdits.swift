import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Hand edits of a backup repository, as someone with write access to a copy of it could make them: headers
/// rebased without qemu-img's checks, manifests rewritten, images swapped for links and FIFOs.
enum ChainEdits {
    /// The qcow2 header extension that records the backing file's format.
    private static let backingFormatExtension: [UInt8] = [0xE2, 0x79, 0x2A, 0xCA]

    /// Removes the backing format from `image`'s header, so that a reader has to guess the backing file's format:
    /// the extension's type is changed to one no reader knows, which qemu and Pullback skip. qemu-img refuses to
    /// write a backing name without a format, hence the byte edit.
    static func dropBackingFormat(_ image: String) throws {
        let header = [UInt8](try FileFacts.bytes(image, at: 0, count: 65536))
        let length = Int(header[100]) << 24 | Int(header[101]) << 16 | Int(header[102]) << 8 | Int(header[103])
        var offset = length
        while offset + 8 <= header.count {
            let type = Array(header[offset..<offset + 4])
            let size =
                Int(header[offset + 4]) << 24 | Int(header[offset + 5]) << 16 | Int(header[offset + 6]) << 8
                | Int(header[offset + 7])
            if type == [0, 0, 0, 0] { break }
            if type == backingFormatExtension {
                try FileFacts.overwrite(image, at: UInt64(offset), with: Data([0x50, 0x42, 0x4B, 0x21]))
                return
            }
            offset += 8 + (size + 7) / 8 * 8
        }
        throw HarnessError("\(image) has no backing format extension")
    }

    /// Sets `key` of disk `target` in the manifest at `point` to `value` (nil removes it), and returns the manifest
    /// as it was, to put back.
    @discardableResult
    static func editManifest(_ point: String, disk target: String, _ key: String, to value: Any?) throws -> Data {
        let path = point + "/manifest.json"
        let original = try FileFacts.contents(path)
        guard var object = try JSONSerialization.jsonObject(with: original) as? [String: Any],
            var disks = object["disks"] as? [[String: Any]],
            let index = disks.firstIndex(where: { $0["target"] as? String == target })
        else {
            throw HarnessError("\(path) has no disk \(target)")
        }
        disks[index][key] = value
        object["disks"] = disks
        try FileFacts.create(path, with: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
        return original
    }

    /// A FIFO at `path`.
    static func makeFIFO(_ path: String) throws {
        guard mkfifo(path, 0o600) == 0 else { throw HarnessError("mkfifo \(path) failed: errno \(errno)") }
    }

    /// A file outside any repository holding `marker` over and over (`size` bytes), so that its content is
    /// recognisable wherever it turns up.
    static func makeSecret(_ path: String, marker: String, size: Int) throws {
        let unit = Array(marker.utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(size)
        while bytes.count < size { bytes += unit }
        try FileFacts.create(path, with: Data(bytes.prefix(size)))
    }

    /// The files under `folder` (recursively, links not followed) whose content contains `marker`.
    static func files(under folder: String, containing marker: String) throws -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: folder) else { return [] }
        let needle = Data(marker.utf8)
        var found: [String] = []
        for case let name as String in walker {
            let path = folder + "/" + name
            var info = Glibc.stat()
            guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { continue }
            if try FileFacts.contents(path).range(of: needle) != nil { found.append(path) }
        }
        return found
    }
}
