/// (to be written)
enum BlockStatusChecks {
    static let all: [ProbeCheck] = []
}
