/// A failure of the test environment itself (a server that does not start, a tool that fails), as opposed to a
/// failed expectation about `pullback`. Thrown so the test stops with a readable reason.
struct HarnessError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}
