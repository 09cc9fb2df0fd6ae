/// (to be written)
enum CommandChecks {
    static let all: [ProbeCheck] = []
}
