/// (to be written)
enum BlockSizeChecks {
    static let all: [ProbeCheck] = []
}
