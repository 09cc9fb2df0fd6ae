import Foundation

/// Which points of a domain `prune` keeps: the newest ones by count, or those started within a span of time before
/// now. The newest point is kept whatever the rule says: the next backup continues from its checkpoint.
public enum RetentionRule: Sendable, Equatable {
    /// The `count` newest points (`--keep N`); `count` is at least 1.
    case newest(Int)
    /// The points whose backup started at most `seconds` before now (`--keep-within 7d`); `seconds` is at least 1.
    case within(seconds: Int)

    /// The longest span `within` accepts: a hundred years, so that no date arithmetic on it can overflow.
    public static let maximumSeconds = 100 * 366 * 86_400

    /// The seconds `text` says, for `--keep-within`: a whole number and one unit, `s`, `m`, `h`, `d` or `w` (`30m`,
    /// `12h`, `7d`); nil for anything else, for zero, and for more than ``maximumSeconds``.
    public static func seconds(in text: String) -> Int? {
        let units: [Character: Int] = ["s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400]
        guard let unit = text.last.flatMap({ units[$0] }) else { return nil }
        let digits = text.dropLast()
        // At most 10 digits: the product below cannot overflow, and the bound is checked on it.
        guard (1...10).contains(digits.count), digits.allSatisfy({ $0.isASCII && $0.isNumber }),
            let number = Int(digits), number > 0, number * unit <= maximumSeconds
        else { return nil }
        return number * unit
    }

    /// The points of `points` (oldest first, as ``BackupRepository/points(of:)`` lists them) that the rule keeps at
    /// `now`, oldest first: never empty when `points` is not, the newest always among them.
    public func kept(_ points: [BackupPoint], now: Date) -> [BackupPoint] {
        guard let newest = points.last else { return [] }
        let kept: [BackupPoint]
        switch self {
        case .newest(let count):
            kept = Array(points.suffix(max(1, count)))
        case .within(let seconds):
            let oldest = now.addingTimeInterval(-Double(seconds))
            kept = points.filter { $0.manifest.started >= oldest }
        }
        return kept.contains(where: { $0.id == newest.id }) ? kept : kept + [newest]
    }
}
