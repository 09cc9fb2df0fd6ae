/// A failure of the test environment itself (a server that does not start, a tool that fails), as opposed to a
/// failed expectation about the code under test. Thrown so the test stops with a readable reason.
package struct HarnessError: Error, CustomStringConvertible {
    package let description: String

    package init(_ description: String) {
        self.description = description
    }
}
