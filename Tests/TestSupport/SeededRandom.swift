/// SplitMix64, a small deterministic generator: the same seed gives the same numbers and bytes on every run, so that
/// fuzzing, random reads and random data repeat exactly and a failure can be replayed.
package struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    package init(seed: UInt64) {
        state = seed
    }

    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The next `count` bytes of the sequence, eight from each number (little-endian).
    package mutating func bytes(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        for start in stride(from: 0, to: count, by: 8) {
            let word = next()
            for index in start..<min(start + 8, count) {
                bytes[index] = UInt8(truncatingIfNeeded: word >> UInt64(8 * (index - start)))
            }
        }
        return bytes
    }

    /// `count` bytes that are the same for the same `seed` on every run.
    package static func bytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var generator = SeededRandom(seed: seed)
        return generator.bytes(count)
    }
}
