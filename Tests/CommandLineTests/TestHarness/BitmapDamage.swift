import Foundation

/// Ways to damage a running guest's checkpoint bitmaps behind libvirt's back, and the block operations around them,
/// for the tests of backups whose bitmap missed writes. Everything goes through `virsh qemu-monitor-command`
/// (QMP), as an administrator or another tool would; libvirt does not notice.
extension LibvirtGuest {
    /// One node of `query-named-block-nodes` (flat), with the dirty bitmaps QEMU keeps on it.
    struct BlockNode: Sendable, CustomStringConvertible {
        /// One dirty bitmap of a node: libvirt names a checkpoint's bitmap after the checkpoint.
        struct Bitmap: Sendable {
            let name: String
            let recording: Bool
            /// Dirty bytes.
            let count: Int64
        }

        let name: String
        /// The block driver: `qcow2` for a disk's format node, `file` for its storage node.
        let driver: String
        let file: String
        let bitmaps: [Bitmap]

        var description: String {
            "\(name) (\(driver) \(file)): "
                + bitmaps.map { "\($0.name) recording=\($0.recording) count=\($0.count)" }
                .joined(separator: ", ")
        }
    }

    /// Runs one QMP command and returns its `return` value; a reply with `error` throws, carrying QEMU's `desc`
    /// (see `qmpError` to expect a refusal).
    @discardableResult
    func qmp(_ command: String, _ arguments: [String: Any] = [:]) async throws -> Any {
        let reply = try await qmpReply(command, arguments)
        if let error = reply["error"] as? [String: Any] {
            throw HarnessError("QMP \(command) \(arguments) failed: \(error["desc"] ?? error)")
        }
        return reply["return"] ?? [:]
    }

    /// QEMU's `desc` of the error a QMP command answers, or nil when it succeeds.
    func qmpError(_ command: String, _ arguments: [String: Any] = [:]) async throws -> String? {
        let reply = try await qmpReply(command, arguments)
        guard let error = reply["error"] as? [String: Any] else { return nil }
        return (error["desc"] as? String) ?? "\(error)"
    }

    private func qmpReply(_ command: String, _ arguments: [String: Any]) async throws -> [String: Any] {
        let request = try JSONSerialization.data(
            withJSONObject: ["execute": command, "arguments": arguments], options: [.sortedKeys])
        let result = try await virshChecked(["qemu-monitor-command", name, String(decoding: request, as: UTF8.self)])
        guard let reply = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] else {
            throw HarnessError("QMP \(command): the reply is not a JSON object: \(result.stdout)")
        }
        return reply
    }

    /// Every block node QEMU has open, with its dirty bitmaps.
    func blockNodes() async throws -> [BlockNode] {
        let nodes = try await qmp("query-named-block-nodes", ["flat": true])
        guard let list = nodes as? [[String: Any]] else {
            throw HarnessError("query-named-block-nodes: unexpected reply \(nodes)")
        }
        return list.map { node in
            let bitmaps = (node["dirty-bitmaps"] as? [[String: Any]] ?? []).map {
                BlockNode.Bitmap(
                    name: $0["name"] as? String ?? "", recording: $0["recording"] as? Bool ?? false,
                    count: ($0["count"] as? NSNumber)?.int64Value ?? -1)
            }
            return BlockNode(
                name: node["node-name"] as? String ?? "", driver: node["drv"] as? String ?? "",
                file: node["file"] as? String ?? "", bitmaps: bitmaps)
        }
    }

    /// The qcow2 format node of the image file `file` (libvirt's `libvirt-N-format`), where its bitmaps live.
    func formatNode(of file: String) async throws -> BlockNode {
        let nodes = try await blockNodes()
        guard let node = nodes.first(where: { $0.driver == "qcow2" && $0.file == file }) else {
            throw HarnessError("no qcow2 node for \(file) among \(nodes)")
        }
        return node
    }

    /// Applies `block-dirty-bitmap-<action>` (`clear`, `disable`, `enable`) to every bitmap on the format node of
    /// `file` (the disk's image by default) and returns the node as it was before; throws when the node has no bitmap.
    @discardableResult
    func changeBitmaps(_ action: String, target: String, file: String? = nil) async throws -> BlockNode {
        let node = try await formatNode(of: file ?? image(target))
        guard !node.bitmaps.isEmpty else { throw HarnessError("no bitmap to \(action) on \(node)") }
        for bitmap in node.bitmaps {
            try await qmp("block-dirty-bitmap-\(action)", ["node": node.name, "name": bitmap.name])
        }
        return node
    }

    /// `virsh snapshot-create-as NAME --disk-only --no-metadata` with `target` moved onto the overlay `overlay`:
    /// created by libvirt, or with `reuse` an existing image backed by the disk's (`--reuse-external`). libvirt adds
    /// a bitmap for each checkpoint to it.
    func snapshotDiskOnly(_ target: String, overlay: String, reuse: Bool = false) async throws {
        try await virshChecked(
            [
                "snapshot-create-as", name, "--name", "overlay", "--disk-only", "--no-metadata",
                "--diskspec", "\(target),snapshot=external,file=\(overlay)",
            ] + (reuse ? ["--reuse-external"] : []))
    }

    /// `virsh blockcommit NAME TARGET --active --pivot --wait`: the overlay's data goes back into its backing image,
    /// which becomes the disk's image again.
    func activeCommit(_ target: String) async throws {
        try await virshChecked(["blockcommit", name, target, "--active", "--pivot", "--wait"])
    }

    /// The source file `virsh domblklist` shows for `target`.
    func source(of target: String) async throws -> String? {
        let list = try await virshChecked(["domblklist", name]).stdout
        for line in list.split(whereSeparator: \.isNewline) {
            let fields = line.split(whereSeparator: \.isWhitespace).map(String.init)
            if fields.count == 2, fields[0] == target { return fields[1] }
        }
        return nil
    }
}

/// Which blocks of two files of the same size differ.
enum BlockDifference {
    /// The granularity of QEMU's dirty bitmaps here, of the disks' qcow2 clusters and of `--check-source`.
    static let blockSize = 65536

    /// The indexes of the `blockSize` blocks where `a` and `b` differ (a block past the end of one counts as
    /// differing when the other has it).
    static func blocks(_ a: String, _ b: String) throws -> [Int] {
        guard let first = FileHandle(forReadingAtPath: a), let second = FileHandle(forReadingAtPath: b) else {
            throw HarnessError("cannot open \(a) or \(b)")
        }
        defer {
            try? first.close()
            try? second.close()
        }
        var differing: [Int] = []
        var index = 0
        while true {
            let left = try first.read(upToCount: blockSize) ?? Data()
            let right = try second.read(upToCount: blockSize) ?? Data()
            if left.isEmpty && right.isEmpty { return differing }
            if left != right { differing.append(index) }
            index += 1
        }
    }
}
