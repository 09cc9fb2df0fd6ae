import Sealing
import Storage
import TestSupport
import Testing

/// Sealed objects in a bucket (SeaweedFS): the sealed placed writer's frames land across the multipart upload's
/// 8 MiB parts, which line up with no frame, and read back through ranged GETs.
@Suite struct SealedBucketTests {
    @Test func placedAndAppendedObjectsRoundTripInABucket() async throws {
        try await Fixture.run { fixture in
            let bucket = try await ServerBucket.start(fixture)
            let client = bucket.client
            let name = bucket.name
            try await onThread {
                let base = try BucketStore(client: client, bucket: name, prefix: "repo")
                let store = SealedStore(base, key: .random()) { $0.description }
                let content = SeededRandom.bytes(9 << 20 + 12345, seed: 21)
                let image = try ObjectKey("web1/p/vda.qcow2")
                let holes: Set<Int> = [0, 9]
                let writer = try store.createPlaced(image, expectedSize: UInt64(content.count))
                try PlacedPieces.write(content, pieceSize: 1 << 20, threads: 4, seed: 22, holes: holes) {
                    try writer.write($0, at: $1)
                }
                try writer.finish(size: UInt64(content.count))
                let expected = PlacedPieces.expected(content, pieceSize: 1 << 20, holes: holes)
                #expect(try store.read(image, limit: 16 << 20) == expected)
                let manifest = try ObjectKey("web1/p/manifest.json")
                try store.write(Array(content[..<100_000]), to: manifest)
                #expect(try store.read(manifest, limit: 1 << 20) == Array(content[..<100_000]))
                let sealed = try #require(try base.read(manifest, limit: 1 << 20))
                #expect(sealed.count == Int(SealedLayout(frameShift: 16)!.sealedSize(plaintextSize: 100_000)!))
                #expect(Array(sealed[64..<1064]) != Array(content[..<1000]))
            }
            await bucket.close()
        }
    }
}
