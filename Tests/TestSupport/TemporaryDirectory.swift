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
        var template = Array("/tmp/\(label)-XXXXXX".utf8CString)
        guard let created = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw HarnessError("mkdtemp failed: \(String(cString: strerror(errno)))")
        }
        path = String(cString: created)
    }

    /// Removes the directory. Tests call it from a `defer`, which also keeps the directory alive until the
    /// end of the test: Swift may otherwise release a local object after its last use, mid-test.
    package func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }

    deinit {
        remove()
    }

    /// The path of `name` inside the directory.
    package func file(_ name: String) -> String { path + "/" + name }
}
