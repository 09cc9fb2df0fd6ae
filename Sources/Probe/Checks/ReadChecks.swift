/// (to be written)
enum ReadChecks {
    static let all: [ProbeCheck] = []
}
