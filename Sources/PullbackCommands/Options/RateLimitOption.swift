import ArgumentParser
import Engine

/// `--limit-rate RATE`: bytes read from the source per second on average, over all connections and disks of the run.
struct RateLimitOption: ParsableArguments {
    @Option(
        name: .customLong("limit-rate"),
        help: ArgumentHelp(
            "Read from the source at most this many bytes per second over the whole run (K, M, G: 1024s), e.g. 100M.",
            valueName: "rate"))
    var rate: ByteRate?

    /// The one limiter of the run, or nil without `--limit-rate`: call once and give it to every copy.
    func makeLimiter() -> ByteRateLimiter? {
        rate.map { ByteRateLimiter(bytesPerSecond: $0.bytesPerSecond) }
    }
}
