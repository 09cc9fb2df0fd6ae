/// A count with its noun in the right number: "1 point", "2 points", "0 domains".
struct Counted: CustomStringConvertible {
    let count: Int
    let noun: String

    init(_ count: Int, _ noun: String) {
        self.count = count
        self.noun = noun
    }

    var description: String { "\(count) \(noun)\(count == 1 ? "" : "s")" }

    /// The verb that agrees with a count: "is" for 1, else "are".
    static func be(_ count: Int) -> String { count == 1 ? "is" : "are" }
}
