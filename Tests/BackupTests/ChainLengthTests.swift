import Foundation
import Testing

@testable import Backup
@testable import Repository

/// How long a chain of points is, as the level choice counts it, and that a restore's chain of 300 points is built.
@Suite("Chain length")
struct ChainLengthTests {
    @Test("a chain of 300 points is counted whole and opens as 300 images; a full starts a new count")
    func longChain() throws {
        let ids = (0..<302).map { String(format: "20260101T%06dZ", $0) }
        // 300 points on one chain, then a full and one incremental over it.
        let specs: [(String, String?)] = ids.enumerated().map { index, id in
            switch index {
            case 0, 300: (id, nil)
            default: (id, ids[index - 1])
            }
        }
        try PrunePlanTests.withPoints(specs) { points, folder in
            #expect(LevelChoice.chainLength(of: points[299], among: points) == 300)
            #expect(LevelChoice.chainLength(of: points[0], among: points) == 1)
            #expect(LevelChoice.chainLength(of: points[301], among: points) == 2)
            let chain = try PointChain.of("vda", at: points[299], among: points, domain: "web1", in: folder)
            #expect(chain.images.count == 300)
            #expect(chain.images.last?.backingName == nil)
        }
    }
}
