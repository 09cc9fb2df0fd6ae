import ArgumentParser

/// A number of bytes per second as a command line gives it: digits with an optional K, M or G suffix (powers of
/// 1024), e.g. `50M`.
struct ByteRate: ExpressibleByArgument, Sendable, Equatable {
    /// Bytes per second.
    var bytesPerSecond: UInt

    init?(argument: String) {
        let units: [Character: UInt] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
        var digits = Substring(argument)
        var unit: UInt = 1
        if let last = digits.last?.uppercased().first, let scale = units[last] {
            unit = scale
            digits = digits.dropLast()
        }
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), let count = UInt(digits), count > 0 else { return nil }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: unit)
        guard !overflow else { return nil }
        bytesPerSecond = bytes
    }
}
