import Foundation

/// Runs the `pullback` binary under test.
enum Pullback {
    /// `PULLBACK_BIN` if set, else `<package root>/.build/debug/pullback`, found from this file's path.
    static func binaryPath() throws -> String {
        let path: String
        if let fromEnvironment = ProcessInfo.processInfo.environment["PULLBACK_BIN"], !fromEnvironment.isEmpty {
            path = fromEnvironment
        } else {
            // #filePath is <root>/Tests/CommandLineTests/TestHarness/Pullback.swift
            var root = URL(fileURLWithPath: #filePath)
            for _ in 0..<4 {
                root.deleteLastPathComponent()
            }
            path = root.appendingPathComponent(".build/debug/pullback").path
        }
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw HarnessError(
                "pullback binary not found or not executable at \(path); run `swift build` first or set PULLBACK_BIN")
        }
        return path
    }

    /// `pullback ARGUMENTS` to completion.
    static func run(_ fixture: Fixture, _ arguments: [String], timeout: Duration = .seconds(60)) async throws
        -> CommandResult
    {
        try await fixture.run([try binaryPath()] + arguments, timeout: timeout)
    }

    /// `pullback copy ARGS...` to completion.
    static func copy(_ fixture: Fixture, _ arguments: [String], timeout: Duration = .seconds(100)) async throws
        -> CommandResult
    {
        try await fixture.run([try binaryPath(), "copy"] + arguments, timeout: timeout)
    }

    /// `pullback copy ARGS...` in the background, for tests that interrupt it.
    static func startCopy(_ fixture: Fixture, _ arguments: [String]) throws -> ChildProcess {
        try fixture.spawn([try binaryPath(), "copy"] + arguments, label: "pullback")
    }

    /// The temporary file a full copy writes before renaming it to `target`.
    static func partialPath(for target: String) -> String {
        let url = URL(fileURLWithPath: target)
        return url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).pullback-partial").path
    }

    /// The marker that exists while an incremental update of `target` is in progress.
    static func markerPath(for target: String) -> String {
        target + ".pullback-updating"
    }
}
