import Foundation

/// Runs qemu-img and qemu-io, which make the reference images and answers the reader is checked against.
///
/// Foundation's `Process`: the tools exit by themselves, so the signal mask a child inherits from a Swift
/// concurrency thread does not matter here. Output goes to files so that a full pipe can never block a child.
enum Qemu {
    @discardableResult
    static func run(_ tool: String, _ arguments: [String]) throws -> Data {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("qemu-\(UUID().uuidString)")
        let stdoutURL = scratch.appendingPathExtension("out")
        let stderrURL = scratch.appendingPathExtension("err")
        _ = FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: stdoutURL)
            try? FileManager.default.removeItem(at: stderrURL)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/" + tool)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        let stdoutHandle = try FileHandle(forWritingTo: stdoutURL)
        let stderrHandle = try FileHandle(forWritingTo: stderrURL)
        process.standardOutput = stdoutHandle
        process.standardError = stderrHandle
        try process.run()
        process.waitUntilExit()
        try stdoutHandle.close()
        try stderrHandle.close()
        let output = try Data(contentsOf: stdoutURL)
        guard process.terminationStatus == 0 else {
            let errors = String(decoding: (try? Data(contentsOf: stderrURL)) ?? Data(), as: UTF8.self)
            throw TestFailure(
                "\(tool) \(arguments.joined(separator: " ")) failed (\(process.terminationStatus)): \(errors)")
        }
        // qemu-io reports a failed command on stdout and still exits 0.
        if tool == "qemu-io", String(decoding: output, as: UTF8.self).contains("failed") {
            throw TestFailure("qemu-io \(arguments.joined(separator: " ")): \(String(decoding: output, as: UTF8.self))")
        }
        return output
    }

    /// `qemu-img create`; `options` such as `["-o", "cluster_size=4096"]` come before the file name.
    static func create(_ path: String, size: UInt64, format: String = "qcow2", options: [String] = []) throws {
        try run("qemu-img", ["create", "-q", "-f", format] + options + [path, String(size)])
    }

    /// An overlay of `backing` (named in the overlay exactly as given).
    static func createOverlay(_ path: String, backing: String, backingFormat: String, size: UInt64? = nil) throws {
        try run(
            "qemu-img",
            ["create", "-q", "-f", "qcow2", "-b", backing, "-F", backingFormat, path]
                + (size.map { [String($0)] } ?? []))
    }

    /// Runs qemu-io commands (`write -P 0xaa 0 64k`, `write -z ...`, `discard ...`) on an image.
    static func io(_ path: String, format: String = "qcow2", _ commands: [String]) throws {
        try run("qemu-io", ["-f", format] + commands.flatMap { ["-c", $0] } + [path])
    }

    /// The whole guest disk as qemu reads it.
    static func rawContents(of path: String) throws -> [UInt8] {
        let output = path + ".reference.raw"
        defer { try? FileManager.default.removeItem(atPath: output) }
        try run("qemu-img", ["convert", "-O", "raw", path, output])
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

    static func map(_ path: String) throws -> [MapEntry] {
        try JSONDecoder().decode([MapEntry].self, from: run("qemu-img", ["map", "--output=json", path]))
    }
}
