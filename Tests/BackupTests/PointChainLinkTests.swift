import Foundation
import Testing

@testable import Backup
@testable import Repository

/// How ``PointChain`` follows the parents manifests name: each link once, a loop or a missing parent refused.
@Suite("A disk's chain through the points' parents")
struct PointChainLinkTests {
    /// Points `ids` of `web1` with real folders (``PrunePlanTests/withPoints(_:_:)``), each based on `parents[id]`.
    static func withPoints(
        _ ids: [String], parents: [String: String], _ body: ([BackupPoint], String) throws -> Void
    ) throws {
        try PrunePlanTests.withPoints(ids.map { ($0, parents[$0]) }, body)
    }

    @Test("a chain of 1,000 points is followed to its full, top first")
    func long() throws {
        let ids = (0..<1000).map { String(format: "20261204T%06dZ", $0) }
        var parents: [String: String] = [:]
        for index in 1..<ids.count { parents[ids[index]] = ids[index - 1] }
        try Self.withPoints(ids, parents: parents) { points, folder in
            let chain = try PointChain.of("vda", at: points.last!, among: points, domain: "web1", in: folder)
            #expect(chain.images.map(\.point) == ids.reversed())
        }
    }

    @Test("parents that name each other, or a point itself, are refused; so is a parent that is not listed")
    func loops() throws {
        let cases: [[String: String]] = [
            ["p1": "p2", "p2": "p1"], ["p1": "p1"], ["p1": "p2", "p2": "p3", "p3": "p2"],
        ]
        for parents in cases {
            try Self.withPoints(["p1", "p2", "p3"], parents: parents) { points, folder in
                let error = #expect(throws: BackupError.self) {
                    _ = try PointChain.of("vda", at: points[0], among: points, domain: "web1", in: folder)
                }
                #expect(error?.message.contains("name each other as parents") == true, "\(parents)")
            }
        }
        try Self.withPoints(["p1"], parents: ["p1": "p0"]) { points, folder in
            let error = #expect(throws: BackupError.self) {
                _ = try PointChain.of("vda", at: points[0], among: points, domain: "web1", in: folder)
            }
            #expect(error?.message.contains("not in the repository") == true, "\(String(describing: error))")
        }
    }
}
