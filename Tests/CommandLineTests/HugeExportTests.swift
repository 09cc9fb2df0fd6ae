import Foundation
import Testing

extension CopyIntegration {
    @Suite("Exports larger than a target can hold", .serialized)
    struct HugeExportTests {
        @Test(
            "copy --format qcow2 of a 2^61-byte export is one error line naming the limit and --format raw",
            .timeLimit(.minutes(2)))
        func qcow2TooLarge() async throws {
            try await Fixture.run { fx in
                let server = try await NBDServer.nbdkit(fx, ["null", "size=\(UInt64(1) << 61)"])
                let target = fx.target("huge.qcow2")
                let result = try await Pullback.copy(fx, ["--format", "qcow2", server.uri(), target])
                expectCleanFailure(result, mentioning: ["2251799813685248", "--format raw"])
                expectNoCopyLeft(at: target)
            }
        }
    }
}
