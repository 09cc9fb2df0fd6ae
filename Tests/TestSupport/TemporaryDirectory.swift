import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A directory of its own for one test under /tmp (short, so unix socket paths in it stay under 108 bytes),
/// removed by `remove()` or when the last reference goes, even after a failure.
package final class TemporaryDirectory: Sendable {
    package let path: String

    /// `mkdtemp("/tmp/<label>-XXXXXX")`.
    package init(_ label: String = "pbtest") throws {
        path = try Self.make(label)
    }

    /// Creates `/tmp/<label>-XXXXXX` (mode 0700) and returns its path, for a directory whose owner removes it
    /// itself (a fixture that may keep it for inspection, a root that lives as long as the process).
    package static func make(_ label: String) throws -> String {
        var template = Array("/tmp/\(label)-XXXXXX".utf8CString)
        guard let created = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw HarnessError("mkdtemp failed: \(String(cString: strerror(errno)))")
        }
        return String(cString: created)
    }

    /// Removes the directory. Tests call it from a `defer`, which also keeps the directory alive until the
    /// end of the test: Swift may otherwise release a local object after its last use, mid-test.
    package func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }

    deinit {
        remove()
    }

    /// Runs `body` with the path of a fresh `/tmp/<label>-XXXXXX`, removed when `body` ends, even when it throws.
    package static func with<T>(_ label: String = "pbtest", _ body: (String) async throws -> T) async throws -> T {
        let directory = try TemporaryDirectory(label)
        defer { directory.remove() }
        return try await body(directory.path)
    }

    /// The path of `name` inside the directory.
    package func file(_ name: String) -> String { path + "/" + name }
}
