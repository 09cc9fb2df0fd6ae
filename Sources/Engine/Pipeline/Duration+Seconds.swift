extension Duration {
    /// The duration in seconds, as summaries and progress report it.
    public var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
