import Foundation
import TestSupport

/// Runs qemu-img and qemu-io, which make the reference images and answers the reader is checked against.
enum Qemu {
    /// Runs `tool ARGS...` to completion and returns its stdout; throws when it fails.
    @discardableResult
    static func run(_ tool: String, _ arguments: [String]) async throws -> Data {
        let result = try await ChildProcess.run([tool] + arguments)
        guard result.succeeded else {
            throw HarnessError(
                "\(tool) \(arguments.joined(separator: " ")) failed (\(result.exitCode)): \(result.stderr)")
        }
        // qemu-io reports a failed command on stdout and still exits 0.
        if tool == "qemu-io", result.stdout.contains("failed") {
            throw HarnessError("qemu-io \(arguments.joined(separator: " ")): \(result.stdout)")
        }
        return Data(result.stdout.utf8)
    }

    /// `qemu-img create`; `options` such as `["-o", "cluster_size=4096"]` come before the file name.
    static func create(_ path: String, size: UInt64, format: String = "qcow2", options: [String] = []) async throws {
        try await run("qemu-img", ["create", "-q", "-f", format] + options + [path, String(size)])
    }

    /// An overlay of `backing` (named in the overlay exactly as given).
    static func createOverlay(
        _ path: String, backing: String, backingFormat: String, size: UInt64? = nil
    ) async throws {
        try await run(
            "qemu-img",
            ["create", "-q", "-f", "qcow2", "-b", backing, "-F", backingFormat, path]
                + (size.map { [String($0)] } ?? []))
    }

    /// Runs qemu-io commands (`write -P 0xaa 0 64k`, `write -z ...`, `discard ...`) on an image.
    static func io(_ path: String, format: String = "qcow2", _ commands: [String]) async throws {
        try await run("qemu-io", ["-f", format] + commands.flatMap { ["-c", $0] } + [path])
    }

    /// The whole guest disk as qemu reads it.
    static func rawContents(of path: String) async throws -> [UInt8] {
        let output = path + ".reference.raw"
        defer { try? FileManager.default.removeItem(atPath: output) }
        try await run("qemu-img", ["convert", "-O", "raw", path, output])
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: output)))
    }

    /// One entry of `qemu-img map --output=json`.
    struct MapEntry: Decodable {
        var start: UInt64
        var length: UInt64
        var depth: Int
        var present: Bool
        var zero: Bool
        var data: Bool
    }

    static func map(_ path: String) async throws -> [MapEntry] {
        try JSONDecoder().decode([MapEntry].self, from: await run("qemu-img", ["map", "--output=json", path]))
    }
}
