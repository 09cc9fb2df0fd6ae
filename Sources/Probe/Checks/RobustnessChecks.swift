/// (to be written)
enum RobustnessChecks {
    static let all: [ProbeCheck] = []
}
