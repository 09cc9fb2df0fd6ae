import TestSupport

/// Runs a qemu tool (qemu-img, qemu-io) to completion and returns its stdout; throws when it fails.
@discardableResult
func qemu(_ arguments: [String]) async throws -> String {
    let result = try await ChildProcess.run(arguments)
    guard result.succeeded else { throw HarnessError("\(result)") }
    return result.stdout
}
