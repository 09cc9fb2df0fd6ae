import Foundation

/// A directory of its own for one test, removed when the test lets go of it, even after a failure.
final class TemporaryDirectory {
    let path: String

    init(_ label: String = "qcow2-reader") throws {
        var template = Array((NSTemporaryDirectory() + "/\(label)-XXXXXX").utf8CString)
        guard let created = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw TestFailure("mkdtemp failed: errno \(errno)")
        }
        path = String(cString: created)
    }

    /// Removes the directory. Tests call it from a `defer`, which also keeps the directory alive until the
    /// end of the test: Swift may otherwise release a local object after its last use, mid-test.
    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }

    deinit {
        remove()
    }

    /// The path of `name` inside the directory.
    func file(_ name: String) -> String { path + "/" + name }
}

/// A failure in a test's own setup, as opposed to a failed expectation.
struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
